//! The actor runtime: the connector manager, one supervisor per connector, one actor per task.
