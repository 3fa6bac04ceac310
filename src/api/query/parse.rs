//! Formance's query language (go-libs `query.ParseJSON`) parsed into an [`Expr`] tree: pure,
//! no SQL and no knowledge of which fields a list allows (that is [`super::sql`]'s job).
//!
//! Grammar (each node is an object with exactly one operator key):
//! - `{"$and": [node, …]}`, `{"$or": [node, …]}`: non-empty arrays;
//! - `{"$not": node}`;
//! - `{"$match" | "$lt" | "$lte" | "$gt" | "$gte" | "$exists": {"field": value, …}}`: several
//!   fields in one comparison are ANDed.
//!
//! Numbers keep their exact JSON text (the query is read through `RawValue`, never through
//! `f64`), so `{"$gte": {"amount": 123456789012345678901234567890}}` compares exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// How deeply `$and`/`$or`/`$not` may nest: bounds recursion on hostile input.
pub const MAX_DEPTH: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `$match`: equality.
    Match,
    /// `$lt`.
    Lt,
    /// `$lte`.
    Lte,
    /// `$gt`.
    Gt,
    /// `$gte`.
    Gte,
    /// `$exists`.
    Exists,
}

impl Op {
    /// Every operator, for tables and generators.
    pub const ALL: [Op; 6] = [Op::Match, Op::Lt, Op::Lte, Op::Gt, Op::Gte, Op::Exists];

    /// The operator's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Op::Match => "$match",
            Op::Lt => "$lt",
            Op::Lte => "$lte",
            Op::Gt => "$gt",
            Op::Gte => "$gte",
            Op::Exists => "$exists",
        }
    }

    fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// A JSON scalar of the query, numbers as their exact text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Literal {
    /// A JSON string.
    Str(String),
    /// A JSON number, exactly as written.
    Num(String),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl Literal {
    /// The literal's JSON type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Literal::Str(_) => "a string",
            Literal::Num(_) => "a number",
            Literal::Bool(_) => "a boolean",
            Literal::Null => "null",
        }
    }
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expr {
    /// All of them.
    And(Vec<Expr>),
    /// Any of them.
    Or(Vec<Expr>),
    /// Not it.
    Not(Box<Expr>),
    /// `field op value`.
    Cmp {
        /// The operator.
        op: Op,
        /// The field as the client wrote it (`status`, `metadata[order]`, …).
        field: String,
        /// The value.
        value: Literal,
    },
}

/// Why a query could not be parsed; the message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query: {0}")]
pub struct ParseError(pub String);

fn err(message: impl Into<String>) -> ParseError {
    ParseError(message.into())
}

/// Parses a query; empty text and `{}` mean "no filter" (`None`), as in go-libs.
pub fn parse(text: &str) -> Result<Option<Expr>, ParseError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let raw: &RawValue =
        serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let object = object(raw, "the query")?;
    if object.is_empty() {
        return Ok(None);
    }
    node_of(object, 0).map(Some)
}

fn object<'a>(raw: &'a RawValue, what: &str) -> Result<BTreeMap<String, &'a RawValue>, ParseError> {
    serde_json::from_str(raw.get())
        .map_err(|_| err(format!("{what} must be a JSON object, not {}", raw.get())))
}

fn node(raw: &RawValue, depth: usize) -> Result<Expr, ParseError> {
    node_of(object(raw, "a query node")?, depth)
}

fn node_of(fields_or_ops: BTreeMap<String, &RawValue>, depth: usize) -> Result<Expr, ParseError> {
    if depth > MAX_DEPTH {
        return Err(err(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    if fields_or_ops.len() != 1 {
        let keys: Vec<&String> = fields_or_ops.keys().collect();
        return Err(err(format!(
            "a query node must have exactly one operator, not {keys:?}"
        )));
    }
    let Some((operator, value)) = fields_or_ops.into_iter().next() else {
        return Err(err("an empty query node"));
    };
    match operator.as_str() {
        "$and" | "$or" => {
            let items: Vec<&RawValue> = serde_json::from_str(value.get())
                .map_err(|_| err(format!("{operator} takes an array of query nodes")))?;
            if items.is_empty() {
                return Err(err(format!("{operator} takes a non-empty array")));
            }
            let children = items
                .into_iter()
                .map(|item| node(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if operator == "$and" {
                Expr::And(children)
            } else {
                Expr::Or(children)
            })
        }
        "$not" => Ok(Expr::Not(Box::new(node(value, depth + 1)?))),
        name => {
            let op = Op::from_name(name).ok_or_else(|| {
                err(format!(
                    "unsupported operator {name:?} (supported: $and, $or, $not, $match, $lt, \
                     $lte, $gt, $gte, $exists)"
                ))
            })?;
            let fields = object(value, &format!("the operand of {name}"))?;
            if fields.is_empty() {
                return Err(err(format!("{name} names no field")));
            }
            let mut cmps = fields
                .into_iter()
                .map(|(field, value)| {
                    Ok(Expr::Cmp {
                        op,
                        field,
                        value: literal(value)?,
                    })
                })
                .collect::<Result<Vec<_>, ParseError>>()?;
            Ok(if cmps.len() == 1 {
                cmps.remove(0)
            } else {
                Expr::And(cmps)
            })
        }
    }
}

fn literal(raw: &RawValue) -> Result<Literal, ParseError> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str(text)
            .map(Literal::Str)
            .map_err(|e| err(format!("bad string {text}: {e}"))),
        Some(b't') if text == "true" => Ok(Literal::Bool(true)),
        Some(b'f') if text == "false" => Ok(Literal::Bool(false)),
        Some(b'n') if text == "null" => Ok(Literal::Null),
        Some(b'-' | b'0'..=b'9') => Ok(Literal::Num(text.to_string())),
        _ => Err(err(format!(
            "a compared value must be a string, number, boolean or null, not {text}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(op: Op, field: &str, value: Literal) -> Expr {
        Expr::Cmp {
            op,
            field: field.into(),
            value,
        }
    }

    #[test]
    fn empty_means_no_filter() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("  "), Ok(None));
        assert_eq!(parse("{}"), Ok(None));
    }

    #[test]
    fn every_operator_parses() {
        for op in Op::ALL {
            let q = format!(r#"{{"{}": {{"status": "SUCCEEDED"}}}}"#, op.name());
            assert_eq!(
                parse(&q),
                Ok(Some(cmp(op, "status", Literal::Str("SUCCEEDED".into()))))
            );
        }
    }

    #[test]
    fn nesting_and_metadata() {
        let q = r#"{"$and": [{"$match": {"metadata[order]": "42"}},
                   {"$or": [{"$lt": {"amount": 10}}, {"$not": {"$gte": {"amount": 100}}}]}]}"#;
        assert_eq!(
            parse(q),
            Ok(Some(Expr::And(vec![
                cmp(Op::Match, "metadata[order]", Literal::Str("42".into())),
                Expr::Or(vec![
                    cmp(Op::Lt, "amount", Literal::Num("10".into())),
                    Expr::Not(Box::new(cmp(Op::Gte, "amount", Literal::Num("100".into())))),
                ]),
            ])))
        );
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        let big = "123456789012345678901234567890123456789";
        let q = format!(r#"{{"$gt": {{"amount": {big}}}}}"#);
        assert_eq!(
            parse(&q),
            Ok(Some(cmp(Op::Gt, "amount", Literal::Num(big.into()))))
        );
    }

    #[test]
    fn several_fields_of_one_comparison_are_anded() {
        let q = r#"{"$match": {"a": "1", "b": true}}"#;
        assert_eq!(
            parse(q),
            Ok(Some(Expr::And(vec![
                cmp(Op::Match, "a", Literal::Str("1".into())),
                cmp(Op::Match, "b", Literal::Bool(true)),
            ])))
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases = [
            ("nope", "JSON"),
            ("[1]", "object"),
            (r#"{"$like": {"a": "b"}}"#, "$like"),
            (r#"{"$and": []}"#, "non-empty"),
            (r#"{"$or": {"a": 1}}"#, "$or"),
            (r#"{"$match": {}}"#, "$match"),
            (r#"{"$match": {"a": [1]}}"#, "[1]"),
            (r#"{"$match": {"a": {"b": 1}}}"#, "{"),
            (r#"{"$match": {"a": 1}, "$lt": {"b": 2}}"#, "exactly one"),
            (r#"{"$not": 3}"#, "object"),
        ];
        for (q, needle) in cases {
            let e = parse(q).expect_err(q);
            assert!(e.to_string().contains(needle), "{q}: {e}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let mut q = r#"{"$match": {"a": "b"}}"#.to_string();
        for _ in 0..(MAX_DEPTH + 2) {
            q = format!(r#"{{"$not": {q}}}"#);
        }
        assert!(parse(&q).expect_err("deep").to_string().contains("deeper"));
    }

    #[test]
    fn the_tree_survives_a_cursor_round_trip() {
        let q = r#"{"$or": [{"$exists": {"metadata": "k"}}, {"$lte": {"amount": 5}}]}"#;
        let e = parse(q).expect("parse").expect("some");
        let back: Expr =
            serde_json::from_str(&serde_json::to_string(&e).expect("ser")).expect("de");
        assert_eq!(back, e);
    }
}
