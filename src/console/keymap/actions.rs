//! What a key can do (`Action`) and where (`Context`): a screen, a form or
//! a stage of one; which actions each context offers, whether text is
//! typed there, and what the help says of each.

/// Where a binding applies: a screen, a form or a stage of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Global,
    Overview,
    Tenant,
    Timeline,
    Trends,
    Lookup,
    Priority,
    ConfirmPriority,
    Composer,
    Preview,
    ConfirmPublish,
    Palette,
    Filter,
    Help,
}

impl Context {
    pub const ALL: [Context; 14] = [
        Context::Global,
        Context::Overview,
        Context::Tenant,
        Context::Timeline,
        Context::Trends,
        Context::Lookup,
        Context::Priority,
        Context::ConfirmPriority,
        Context::Composer,
        Context::Preview,
        Context::ConfirmPublish,
        Context::Palette,
        Context::Filter,
        Context::Help,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Overview => "overview",
            Context::Tenant => "tenant",
            Context::Timeline => "timeline",
            Context::Trends => "trends",
            Context::Lookup => "lookup",
            Context::Priority => "priority",
            Context::ConfirmPriority => "confirm_priority",
            Context::Composer => "composer",
            Context::Preview => "preview",
            Context::ConfirmPublish => "confirm_publish",
            Context::Palette => "palette",
            Context::Filter => "filter",
            Context::Help => "help",
        }
    }

    /// What the help calls the keys of this context.
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "everywhere",
            Context::Overview => "overview",
            Context::Tenant => "a tenant's mailboxes",
            Context::Timeline => "timeline",
            Context::Trends => "trends",
            Context::Lookup => "lookup",
            Context::Priority => "priority form",
            Context::ConfirmPriority => "priority form, asking to confirm",
            Context::Composer => "status update composer",
            Context::Preview => "status update preview",
            Context::ConfirmPublish => "status update, asking to confirm",
            Context::Palette => "command palette",
            Context::Filter => "typing a filter",
            Context::Help => "this help",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Text is typed here: a plain character or backspace edits the text,
    /// so it cannot be bound (and `[global]`'s letters do not apply).
    pub fn types(self) -> bool {
        matches!(
            self,
            Context::Lookup
                | Context::Priority
                | Context::Composer
                | Context::Palette
                | Context::Filter
        )
    }

    /// `[global]` bindings apply here too: on the screens and in the help,
    /// not where text is typed, nor in a preview or a question (where `q`
    /// must not end the console with a form half sent).
    pub fn takes_global(self) -> bool {
        matches!(
            self,
            Context::Overview
                | Context::Tenant
                | Context::Timeline
                | Context::Trends
                | Context::Help
        )
    }

    /// Actions that make sense in this context.
    pub fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Context::Global => &[Quit, Help, Palette, Lookup, Timeline, Trends, Compose],
            Context::Overview => &[
                Down,
                Up,
                PageDown,
                PageUp,
                Top,
                Bottom,
                Open,
                Back,
                SortNext,
                SortReverse,
                AffectedOnly,
                Filter,
                Prioritize,
            ],
            Context::Tenant => &[
                Down,
                Up,
                Top,
                Bottom,
                Back,
                NextPage,
                PrevPage,
                StateFilter,
                ToggleOrder,
                Reload,
                Filter,
                Export,
                Prioritize,
            ],
            Context::Timeline => &[Down, Up, PageDown, PageUp, Top, Bottom, Open, Back],
            Context::Trends => &[Down, Up, Top, Back],
            Context::Lookup => &[Down, Up, Open, Copy, Back, Help],
            Context::Priority => &[
                PriorityUp,
                PriorityDown,
                RankUp,
                RankDown,
                Submit,
                Back,
                Help,
            ],
            Context::ConfirmPriority | Context::ConfirmPublish => &[Confirm],
            Context::Composer => &[
                NextField, PrevField, StateNext, StatePrev, Preview, Back, Help,
            ],
            Context::Preview => &[Down, Up, PageDown, PageUp, Submit, Back, Help],
            Context::Palette => &[Submit, Complete, Back],
            Context::Filter => &[Submit, Back],
            Context::Help => &[Down, Up, PageDown, PageUp, Top, Bottom],
        }
    }
}

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Palette,
    Lookup,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Open,
    Back,
    SortNext,
    SortReverse,
    AffectedOnly,
    Filter,
    NextPage,
    PrevPage,
    StateFilter,
    ToggleOrder,
    Reload,
    Export,
    Prioritize,
    Timeline,
    Trends,
    Compose,
    Copy,
    Submit,
    Confirm,
    Complete,
    PriorityUp,
    PriorityDown,
    RankUp,
    RankDown,
    NextField,
    PrevField,
    StateNext,
    StatePrev,
    Preview,
}

impl Action {
    pub const ALL: [Action; 39] = [
        Action::Quit,
        Action::Help,
        Action::Palette,
        Action::Lookup,
        Action::Down,
        Action::Up,
        Action::PageDown,
        Action::PageUp,
        Action::Top,
        Action::Bottom,
        Action::Open,
        Action::Back,
        Action::SortNext,
        Action::SortReverse,
        Action::AffectedOnly,
        Action::Filter,
        Action::NextPage,
        Action::PrevPage,
        Action::StateFilter,
        Action::ToggleOrder,
        Action::Reload,
        Action::Export,
        Action::Prioritize,
        Action::Timeline,
        Action::Trends,
        Action::Compose,
        Action::Copy,
        Action::Submit,
        Action::Confirm,
        Action::Complete,
        Action::PriorityUp,
        Action::PriorityDown,
        Action::RankUp,
        Action::RankDown,
        Action::NextField,
        Action::PrevField,
        Action::StateNext,
        Action::StatePrev,
        Action::Preview,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Palette => "palette",
            Action::Lookup => "lookup",
            Action::Down => "down",
            Action::Up => "up",
            Action::PageDown => "page_down",
            Action::PageUp => "page_up",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Open => "open",
            Action::Back => "back",
            Action::SortNext => "sort_next",
            Action::SortReverse => "sort_reverse",
            Action::AffectedOnly => "affected_only",
            Action::Filter => "filter",
            Action::NextPage => "next_page",
            Action::PrevPage => "prev_page",
            Action::StateFilter => "state_filter",
            Action::ToggleOrder => "toggle_order",
            Action::Reload => "reload",
            Action::Export => "export",
            Action::Prioritize => "prioritize",
            Action::Timeline => "timeline",
            Action::Trends => "trends",
            Action::Compose => "compose",
            Action::Copy => "copy",
            Action::Submit => "submit",
            Action::Confirm => "confirm",
            Action::Complete => "complete",
            Action::PriorityUp => "priority_up",
            Action::PriorityDown => "priority_down",
            Action::RankUp => "rank_up",
            Action::RankDown => "rank_down",
            Action::NextField => "next_field",
            Action::PrevField => "prev_field",
            Action::StateNext => "state_next",
            Action::StatePrev => "state_prev",
            Action::Preview => "preview",
        }
    }

    /// What it does in `ctx`, for the help screen.
    pub fn describe(self, ctx: Context) -> &'static str {
        use Context as C;
        match (self, ctx) {
            (Action::Quit, _) => "quit",
            (Action::Help, C::Global) => "this help",
            (Action::Help, _) => "the keys of this form",
            (Action::Palette, _) => {
                "commands :open :lookup :prio :trends :timeline :sort :filter :quit"
            }
            (Action::Lookup, _) => "look up a mailbox, domain or tenant (ctrl-y copies the answer)",
            (Action::Down, C::Trends) => "next tenant's trends",
            (Action::Up, C::Trends) => "previous tenant's trends",
            (Action::Top, C::Trends) => "every tenant's trends again",
            (Action::Down, C::Preview | C::Help) => "scroll down",
            (Action::Up, C::Preview | C::Help) => "scroll up",
            (Action::Down, _) => "move down",
            (Action::Up, _) => "move up",
            (Action::PageDown, _) => "page down",
            (Action::PageUp, _) => "page up",
            (Action::Top, C::Help) => "top",
            (Action::Bottom, C::Help) => "end",
            (Action::Top, _) => "first row",
            (Action::Bottom, _) => "last row",
            (Action::Open, C::Timeline) => "the event in full",
            (Action::Open, C::Lookup) => "open the chosen match's tenant",
            (Action::Open, _) => "open the tenant's mailboxes (those not ok)",
            (Action::Back, C::Composer) => "close the composer (the draft is kept)",
            (Action::Back, C::Preview) => "back to the form",
            (Action::Back, C::Priority) => "cancel",
            (Action::Back, C::Palette) => "cancel",
            (Action::Back, C::Filter) => "clear the filter",
            (Action::Back, _) => "back / clear the filter",
            (Action::SortNext, _) => "cycle the sort key",
            (Action::SortReverse, _) => "reverse the sort",
            (Action::AffectedOnly, _) => "affected tenants only",
            (Action::Filter, _) => {
                "filter the list (tenants: id, name, domain; mailboxes: address)"
            }
            (Action::NextPage, _) => "next page of mailboxes",
            (Action::PrevPage, _) => "previous page of mailboxes",
            (Action::StateFilter, _) => "cycle the mailbox state filter",
            (Action::ToggleOrder, _) => "reindex order (ETA) or address order",
            (Action::Reload, _) => "reload this page",
            (Action::Export, _) => {
                "export the tenant's mailboxes affected now (not the restored) to a CSV file here"
            }
            (Action::Prioritize, _) => {
                "set the tenant's reindex priority (a priority, a rank, a reason)"
            }
            (Action::Timeline, _) => "timeline: every priority change and publish (esc back)",
            (Action::Trends, _) => {
                "trends over time: queue, affected mailboxes, forecast (↑↓ a tenant)"
            }
            (Action::Compose, _) => "compose a status update (the draft is kept)",
            (Action::Copy, _) => "copy the answer to read out (OSC 52 clipboard)",
            (Action::Submit, C::Priority) => "review the change, then confirm",
            (Action::Submit, C::Preview) => "publish… (asks to confirm)",
            (Action::Submit, C::Palette) => "run the command",
            (Action::Submit, _) => "keep the filter",
            (Action::Confirm, C::ConfirmPublish) => "publish now (any other key: back)",
            (Action::Confirm, _) => "set it (any other key: back to the form)",
            (Action::Complete, _) => "complete the command or its argument",
            (Action::PriorityUp, _) => "more urgent priority (towards P0)",
            (Action::PriorityDown, _) => "less urgent priority (towards P3)",
            (Action::RankUp, _) => "earlier within the priority (towards #1)",
            (Action::RankDown, _) => "later within the priority (towards the fair order)",
            (Action::NextField, _) => "next field (enter in the body: a new line)",
            (Action::PrevField, _) => "previous field",
            (Action::StateNext, _) => "next state (in the state field)",
            (Action::StatePrev, _) => "previous state (in the state field)",
            (Action::Preview, _) => "preview exactly what each channel will receive",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }
}
