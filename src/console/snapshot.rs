//! `warroom snapshot`: the one-screen picture as plain text, for pastes,
//! logs and `watch`. It is drawn by the same code as the live console, into
//! an off-screen buffer, and printed without any escape sequence.

use chrono::Utc;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::App;
use super::theme::Theme;
use super::ui;
use crate::client::{ClientEvent, GatewayClient};

/// Connects to `url`, waits for the first snapshot and draws it at
/// `width`×`height`.
pub async fn text(client: &GatewayClient, width: u16, height: u16) -> anyhow::Result<String> {
    let first = crate::client::first_update(client).await?;
    let mut app = App::new(client.url().to_string(), Theme::mono());
    // One picture of the first snapshot: what it would fetch next is not
    // needed.
    let _ = app.on_client(ClientEvent::Update(Box::new(first)));
    app.clock = Utc::now();
    app.prepare();
    let mut term = Terminal::new(TestBackend::new(width, height))?;
    term.draw(|f| ui::render(f, &app))?;
    Ok(buffer_text(term.backend().buffer()))
}

/// A drawn buffer as plain text: one line per row, trailing blanks trimmed.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let area = buf.area;
    let mut out = String::with_capacity((area.width as usize + 1) * area.height as usize);
    for y in area.top()..area.bottom() {
        let line: String = (area.left()..area.right())
            .map(|x| buf[(x, y)].symbol())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
