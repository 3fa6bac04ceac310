//! The Prometheus text format for what Tributary renders itself (beside the exporter's own
//! output): TYPE lines and samples, label values escaped by the exporter's own function.

use std::fmt::Display;
use std::fmt::Write;

use metrics_exporter_prometheus::formatting::sanitize_label_value;

/// Label pairs, in the order they are written.
pub type Labels = Vec<(String, String)>;

/// Writes the `# TYPE` line of a metric family.
pub fn family(out: &mut String, name: &str, kind: &str) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample.
pub fn sample(out: &mut String, name: &str, labels: &[(String, String)], value: impl Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", sanitize_label_value(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Writes a family of one sample.
pub fn single(
    out: &mut String,
    name: &str,
    kind: &str,
    labels: &[(String, String)],
    value: impl Display,
) {
    family(out, name, kind);
    sample(out, name, labels, value);
}
