//! Connectors, one folder each; they depend only on the SDK.
