//! Compiles a query [`Expr`] against a list's field table into a parameterised SQL
//! [`Condition`]: column names and operators come only from the table, every value is a bound
//! parameter, and a field or operator the table does not allow is an error naming it.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::parse::{Expr, Literal, Op};
use crate::storage::queries::page::{Condition, Piece, SqlValue};

/// How a field's values are typed and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A text column; values are JSON strings.
    Text,
    /// A text column that may be NULL: also `{"$exists": {"field": true|false}}`.
    NullableText,
    /// An exact integer column (NUMERIC); values are JSON integers or digit strings.
    Amount,
    /// A timestamp column; values are RFC 3339 strings.
    Time,
    /// A UUID column; values are UUID strings, checked here (a malformed one is a 400, not a
    /// database error) and bound as `uuid` so that the column's index serves `$match`.
    Uuid,
    /// A JSONB string map: `metadata[key]` with `$match` (containment, GIN-indexed), and
    /// `{"$exists": {"metadata": "key"}}`.
    Metadata,
}

/// One filterable field of a list.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The names a client may use (Formance's snake_case column name first, then aliases).
    pub names: &'static [&'static str],
    /// The SQL column or expression (trusted text, e.g. `p.status`).
    pub column: &'static str,
    /// The type.
    pub kind: Kind,
    /// The operators allowed on it.
    pub ops: &'static [Op],
}

/// `$match` only (Formance allows only equality on most payment columns).
pub const MATCH: &[Op] = &[Op::Match];
/// Equality and ordering.
pub const ORDERED: &[Op] = &[Op::Match, Op::Lt, Op::Lte, Op::Gt, Op::Gte];
/// Equality and `$exists`.
pub const MATCH_EXISTS: &[Op] = &[Op::Match, Op::Exists];

impl Field {
    /// A field with its names, column, type and operators.
    pub const fn new(
        names: &'static [&'static str],
        column: &'static str,
        kind: Kind,
        ops: &'static [Op],
    ) -> Field {
        Field {
            names,
            column,
            kind,
            ops,
        }
    }
}

/// Why a query does not fit a list: the message names the field or operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The list has no such field.
    #[error("query: unsupported field {field:?} (supported: {supported})")]
    UnknownField {
        /// The field as written.
        field: String,
        /// The list's field names.
        supported: String,
    },
    /// The field does not take this operator.
    #[error("query: operator {op} is not supported on field {field:?} (supported: {supported})")]
    Operator {
        /// The field.
        field: String,
        /// The operator.
        op: &'static str,
        /// The field's operators.
        supported: String,
    },
    /// The value does not fit the field.
    #[error("query: field {field:?}: {message}")]
    Value {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Compiles `expr` against `fields` (one list's table).
pub fn compile(expr: &Expr, fields: &[Field]) -> Result<Condition, CompileError> {
    let mut out = Condition::default();
    emit(expr, fields, &mut out.pieces)?;
    Ok(out)
}

fn sql(pieces: &mut Vec<Piece>, text: &str) {
    pieces.push(Piece::Sql(text.to_string()));
}

fn emit(expr: &Expr, fields: &[Field], out: &mut Vec<Piece>) -> Result<(), CompileError> {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            let joiner = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql(out, "(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql(out, joiner);
                }
                emit(item, fields, out)?;
            }
            sql(out, ")");
            Ok(())
        }
        Expr::Not(inner) => {
            // NOT over a NULL comparison is NULL: COALESCE keeps `$not` the complement.
            sql(out, "NOT COALESCE((");
            emit(inner, fields, out)?;
            sql(out, "), FALSE)");
            Ok(())
        }
        Expr::Cmp { op, field, value } => comparison(*op, field, value, fields, out),
    }
}

fn lookup<'a>(name: &str, fields: &'a [Field]) -> Option<(&'a Field, Option<String>)> {
    if let Some(key) = name
        .strip_prefix("metadata[")
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return fields
            .iter()
            .find(|f| f.kind == Kind::Metadata)
            .map(|f| (f, Some(key.to_string())));
    }
    fields
        .iter()
        .find(|f| f.names.contains(&name))
        .map(|f| (f, None))
}

fn supported(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.kind == Kind::Metadata {
                "metadata[<key>]".to_string()
            } else {
                f.names[0].to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn comparison(
    op: Op,
    name: &str,
    value: &Literal,
    fields: &[Field],
    out: &mut Vec<Piece>,
) -> Result<(), CompileError> {
    let (field, key) = lookup(name, fields).ok_or_else(|| CompileError::UnknownField {
        field: name.to_string(),
        supported: supported(fields),
    })?;
    if !field.ops.contains(&op) {
        return Err(CompileError::Operator {
            field: name.to_string(),
            op: op.name(),
            supported: field
                .ops
                .iter()
                .map(|o| o.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let bad = |message: String| CompileError::Value {
        field: name.to_string(),
        message,
    };
    let column = field.column;
    let symbol = match op {
        Op::Match => "=",
        Op::Lt => "<",
        Op::Lte => "<=",
        Op::Gt => ">",
        Op::Gte => ">=",
        Op::Exists => "",
    };
    match (field.kind, op) {
        (Kind::Metadata, Op::Exists) => {
            let Literal::Str(k) = value else {
                return Err(bad(format!(
                    "$exists takes the metadata key as a string, not {}",
                    value.kind()
                )));
            };
            if key.is_some() {
                return Err(bad("write $exists as {\"metadata\": \"<key>\"}".into()));
            }
            sql(out, &format!("{column} ? "));
            out.push(Piece::Param(SqlValue::Text(k.clone())));
        }
        (Kind::Metadata, _) => {
            let Some(key) = key else {
                return Err(bad("compare a key: metadata[<key>]".into()));
            };
            let Literal::Str(v) = value else {
                return Err(bad(format!(
                    "metadata values are strings, not {}",
                    value.kind()
                )));
            };
            sql(out, &format!("{column} @> "));
            out.push(Piece::Param(SqlValue::Json(json!({ key: v }))));
        }
        (_, Op::Exists) => {
            let Literal::Bool(present) = value else {
                return Err(bad(format!(
                    "$exists takes true or false, not {}",
                    value.kind()
                )));
            };
            let test = if *present { "IS NOT NULL" } else { "IS NULL" };
            sql(out, &format!("{column} {test}"));
        }
        (Kind::Text | Kind::NullableText, _) => {
            let Literal::Str(v) = value else {
                return Err(bad(format!("takes a string, not {}", value.kind())));
            };
            sql(out, &format!("{column} {symbol} "));
            out.push(Piece::Param(SqlValue::Text(v.clone())));
        }
        (Kind::Uuid, _) => {
            let Literal::Str(v) = value else {
                return Err(bad(format!("takes a UUID string, not {}", value.kind())));
            };
            uuid::Uuid::parse_str(v).map_err(|e| bad(format!("not a UUID {v:?}: {e}")))?;
            sql(out, &format!("{column} {symbol} "));
            out.push(Piece::Param(SqlValue::Text(v.clone())));
            sql(out, "::uuid");
        }
        (Kind::Amount, _) => {
            let text = match value {
                Literal::Num(t) | Literal::Str(t) => t,
                other => return Err(bad(format!("takes an integer, not {}", other.kind()))),
            };
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.is_empty()
                || digits.len() > 120
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad(format!("takes an exact integer, not {text}")));
            }
            sql(out, &format!("{column} {symbol} "));
            out.push(Piece::Param(SqlValue::Numeric(text.clone())));
        }
        (Kind::Time, _) => {
            let Literal::Str(t) = value else {
                return Err(bad(format!("takes an RFC 3339 time, not {}", value.kind())));
            };
            let at: DateTime<Utc> = DateTime::parse_from_rfc3339(t)
                .map_err(|e| bad(format!("takes an RFC 3339 time, not {t:?}: {e}")))?
                .with_timezone(&Utc);
            sql(out, &format!("{column} {symbol} "));
            out.push(Piece::Param(SqlValue::Time(at)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    const FIELDS: &[Field] = &[
        Field::new(&["status"], "p.status", Kind::Text, MATCH),
        Field::new(&["reference"], "p.reference", Kind::Text, ORDERED),
        Field::new(
            &["source_account_id"],
            "p.src",
            Kind::NullableText,
            MATCH_EXISTS,
        ),
        Field::new(&["amount"], "p.amount", Kind::Amount, ORDERED),
        Field::new(
            &["created_at", "createdAt"],
            "p.created_at",
            Kind::Time,
            ORDERED,
        ),
        Field::new(&["metadata"], "p.metadata", Kind::Metadata, MATCH_EXISTS),
    ];

    fn render(q: &str) -> Result<(String, Vec<SqlValue>), CompileError> {
        let expr = parse(q).expect("parse").expect("some");
        compile(&expr, FIELDS).map(|c| c.render())
    }

    #[test]
    fn comparisons_bind_every_value() {
        let (text, values) = render(
            r#"{"$and": [{"$match": {"status": "x' OR 1=1 --"}}, {"$gte": {"amount": 10}},
                {"$lt": {"createdAt": "2026-01-01T00:00:00Z"}}]}"#,
        )
        .expect("compile");
        assert_eq!(
            text,
            "((p.status = $1::text AND p.amount >= $2::text::numeric \
             AND p.created_at < $3::timestamptz))"
        );
        assert_eq!(values[0], SqlValue::Text("x' OR 1=1 --".into()));
        assert_eq!(values[1], SqlValue::Numeric("10".into()));
    }

    #[test]
    fn amounts_stay_exact_text() {
        let big = "98765432109876543210987654321098765432109876543210";
        let (_, values) = render(&format!(r#"{{"$lte": {{"amount": {big}}}}}"#)).expect("c");
        assert_eq!(values, vec![SqlValue::Numeric(big.into())]);
        for bad in ["1.5", "1e3", "\"ten\"", "true"] {
            let e = render(&format!(r#"{{"$lt": {{"amount": {bad}}}}}"#)).expect_err(bad);
            assert!(e.to_string().contains("\"amount\""), "{e}");
        }
    }

    #[test]
    fn metadata_match_and_exists() {
        let (text, values) = render(
            r#"{"$or": [{"$match": {"metadata[order]": "42"}}, {"$exists": {"metadata": "k"}}]}"#,
        )
        .expect("compile");
        assert_eq!(text, "((p.metadata @> $1::jsonb OR p.metadata ? $2::text))");
        assert_eq!(values[0], SqlValue::Json(json!({"order": "42"})));
        assert_eq!(values[1], SqlValue::Text("k".into()));
    }

    #[test]
    fn uuids_are_checked_and_bound_as_uuid() {
        const IDS: &[Field] = &[Field::new(&["id"], "b.id", Kind::Uuid, MATCH)];
        let compiled = |q: &str| compile(&parse(q).expect("parse").expect("some"), IDS);
        let id = "0b7c4a52-3c1e-4f5e-9a43-2f6d0c1e8b7a";
        let (text, values) = compiled(&format!(r#"{{"$match": {{"id": "{id}"}}}}"#))
            .expect("compile")
            .render();
        assert_eq!(text, "(b.id = $1::text::uuid)");
        assert_eq!(values, vec![SqlValue::Text(id.into())]);
        for bad in [r#""nope""#, "1"] {
            let e = compiled(&format!(r#"{{"$match": {{"id": {bad}}}}}"#)).expect_err(bad);
            assert!(e.to_string().contains("\"id\""), "{e}");
        }
    }

    #[test]
    fn not_and_exists_on_nullable_columns() {
        let (text, _) =
            render(r#"{"$not": {"$exists": {"source_account_id": true}}}"#).expect("compile");
        assert_eq!(text, "(NOT COALESCE((p.src IS NOT NULL), FALSE))");
    }

    #[test]
    fn unsupported_fields_and_operators_are_named() {
        let e = render(r#"{"$match": {"colour": "red"}}"#).expect_err("field");
        assert!(e.to_string().contains("\"colour\""), "{e}");
        let e = render(r#"{"$lt": {"status": "A"}}"#).expect_err("op");
        assert!(
            e.to_string().contains("$lt") && e.to_string().contains("\"status\""),
            "{e}"
        );
        let e = render(r#"{"$lt": {"metadata[a]": "1"}}"#).expect_err("op");
        assert!(e.to_string().contains("$lt"), "{e}");
        let e = render(r#"{"$match": {"metadata[a]": 1}}"#).expect_err("value");
        assert!(e.to_string().contains("metadata[a]"), "{e}");
        let e = render(r#"{"$match": {"status": 3}}"#).expect_err("value");
        assert!(e.to_string().contains("\"status\""), "{e}");
        let e = render(r#"{"$exists": {"amount": true}}"#).expect_err("op");
        assert!(e.to_string().contains("$exists"), "{e}");
        let e = render(r#"{"$gt": {"created_at": "yesterday"}}"#).expect_err("time");
        assert!(e.to_string().contains("created_at"), "{e}");
    }

    /// Random trees over the table: compiling never panics, placeholders match the values,
    /// and parentheses balance. (That PostgreSQL accepts them is tested against a database in
    /// tests/it/api/query.rs.)
    #[test]
    fn random_trees_compile_consistently() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        for _ in 0..2000 {
            let expr = random_expr(&mut rng, 0);
            let Ok(c) = compile(&expr, FIELDS) else {
                continue;
            };
            let (text, values) = c.render();
            assert_eq!(text.matches('$').count(), values.len(), "{text}");
            assert_eq!(
                text.matches('(').count(),
                text.matches(')').count(),
                "{text}"
            );
        }
    }

    /// A random expression over [`FIELDS`] with values of the right type, kept small on
    /// purpose (tests/it/api/query.rs has its own generator for PostgreSQL).
    fn random_expr(rng: &mut impl rand::Rng, depth: usize) -> Expr {
        let pick = if depth >= 4 {
            3
        } else {
            rng.random_range(0..6)
        };
        match pick {
            0 => Expr::And(
                (0..rng.random_range(1..4))
                    .map(|_| random_expr(rng, depth + 1))
                    .collect(),
            ),
            1 => Expr::Or(
                (0..rng.random_range(1..4))
                    .map(|_| random_expr(rng, depth + 1))
                    .collect(),
            ),
            2 => Expr::Not(Box::new(random_expr(rng, depth + 1))),
            _ => {
                let (field, ops, value): (&str, &[Op], Literal) = match rng.random_range(0..5) {
                    0 => ("status", MATCH, Literal::Str("SUCCEEDED".into())),
                    1 => ("reference", ORDERED, Literal::Str("r".into())),
                    2 => (
                        "amount",
                        ORDERED,
                        Literal::Num(rng.random_range(-5i64..500).to_string()),
                    ),
                    3 => (
                        "created_at",
                        ORDERED,
                        Literal::Str("2026-01-01T00:00:00Z".into()),
                    ),
                    _ => ("metadata[k]", MATCH, Literal::Str("v".into())),
                };
                Expr::Cmp {
                    op: ops[rng.random_range(0..ops.len())],
                    field: field.into(),
                    value,
                }
            }
        }
    }
}
