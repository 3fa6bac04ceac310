//! The connector SDK: everything a connector author uses, and nothing of the runtime's internals.
