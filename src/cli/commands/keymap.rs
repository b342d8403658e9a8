//! `warroom keymap`.

use crate::cli::args::*;
use warroom::console::keymap::{self, Keymap};

pub(crate) fn keymap_cmd(cmd: KeymapCommand) -> anyhow::Result<i32> {
    match cmd {
        KeymapCommand::Check { file } => {
            let text = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
            let text = String::from_utf8(text)
                .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", file.display()))?;
            let base = keymap::builtin_text("default")
                .map_err(anyhow::Error::msg)?
                .to_string();
            match Keymap::build(
                "check",
                &[
                    ("keymaps/default.toml".into(), base),
                    (file.display().to_string(), text),
                ],
            ) {
                Ok(_) => {
                    outln!("{}: ok", file.display());
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(1)
                }
            }
        }
        KeymapCommand::Show { name } => {
            let text = keymap::builtin_text(&name).map_err(anyhow::Error::msg)?;
            out!("{text}");
            Ok(0)
        }
    }
}
