//! The file formats: one JSON object per file or per line, either
//! `{"kind": "payment", "payment": {…}}`, `{"kind": "account", "account": {…}}`,
//! `{"kind": "balance", "balance": {…}}`, or the seed guide's bare payment object
//! `{"reference", "amount", "asset", "type", "status", "scheme", "createdAt"}`.
//! `created_at` is accepted wherever `createdAt` is (the seed guide writes it that way), and
//! `scheme` is read case-insensitively (`VISA`, `Sepa Credit`).
//!
//! Objects are read field by field from raw JSON, so that amounts stay exact (a 40-digit
//! amount is never a float) and each error names its field.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use tributary_sdk::ingest::{
    AccountData, AccountType, Amount, BalanceData, PaymentData, PaymentStatus, PaymentType, Scheme,
    check_asset,
};

/// One object of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A payment.
    Payment(PaymentData),
    /// An account.
    Account(AccountData),
    /// A balance.
    Balance(BalanceData),
}

type Fields<'a> = HashMap<String, &'a RawValue>;

fn fields(text: &str) -> Result<Fields<'_>, String> {
    serde_json::from_str::<Fields<'_>>(text).map_err(|e| {
        if text.trim_start().starts_with('{') {
            format!("not valid JSON: {e}")
        } else {
            "not a JSON object".to_string()
        }
    })
}

fn string(fields: &Fields<'_>, name: &str) -> Result<Option<String>, String> {
    match fields.get(name) {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| format!("{name}: must be a string, got {}", preview(raw.get()))),
    }
}

fn required(fields: &Fields<'_>, name: &str) -> Result<String, String> {
    match string(fields, name)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(format!("{name}: is required")),
    }
}

/// `createdAt`, or the guide's `created_at` when `createdAt` is absent.
fn created_at(fields: &Fields<'_>) -> Result<DateTime<Utc>, String> {
    match string(fields, "createdAt")? {
        None if fields.contains_key("created_at") => time(fields, "created_at"),
        _ => time(fields, "createdAt"),
    }
}

fn time(fields: &Fields<'_>, name: &str) -> Result<DateTime<Utc>, String> {
    let text = required(fields, name)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{name}: must be an RFC 3339 time, got {text:?} ({e})"))
}

fn integer<'a>(fields: &Fields<'a>, name: &str) -> Result<&'a str, String> {
    let raw = fields
        .get(name)
        .ok_or_else(|| format!("{name}: is required"))?;
    let text = raw.get().trim();
    if text.starts_with('"') {
        return Err(format!(
            "{name}: must be a JSON integer, got the string {text}"
        ));
    }
    Ok(text)
}

fn metadata(fields: &Fields<'_>) -> Result<BTreeMap<String, String>, String> {
    match fields.get("metadata") {
        None => Ok(BTreeMap::new()),
        Some(raw) if raw.get() == "null" => Ok(BTreeMap::new()),
        Some(raw) => serde_json::from_str::<BTreeMap<String, String>>(raw.get())
            .map_err(|_| "metadata: must be an object of strings".to_string()),
    }
}

fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(40).collect();
    if p.len() < text.len() {
        p.push('…');
    }
    p
}

fn payment(fields: &Fields<'_>, raw: &str) -> Result<PaymentData, String> {
    let asset = required(fields, "asset")?;
    check_asset("asset", &asset).map_err(|e| e.to_string())?;
    Ok(PaymentData {
        reference: required(fields, "reference")?,
        created_at: created_at(fields)?,
        payment_type: PaymentType::parse(&required(fields, "type")?).map_err(|e| e.to_string())?,
        status: PaymentStatus::parse(&required(fields, "status")?).map_err(|e| e.to_string())?,
        scheme: match string(fields, "scheme")? {
            Some(s) => Scheme::parse(&s.to_ascii_lowercase()).map_err(|e| e.to_string())?,
            None => Scheme::Other,
        },
        amount: Amount::payment("amount", integer(fields, "amount")?).map_err(|e| e.to_string())?,
        asset,
        source_account: string(fields, "sourceAccountId")?.or(string(fields, "sourceAccountID")?),
        destination_account: string(fields, "destinationAccountId")?
            .or(string(fields, "destinationAccountID")?),
        raw: Some(raw.to_string()),
        metadata: metadata(fields)?,
    })
}

fn account(fields: &Fields<'_>, raw: &str) -> Result<AccountData, String> {
    let default_asset = string(fields, "defaultAsset")?;
    if let Some(asset) = &default_asset {
        check_asset("defaultAsset", asset).map_err(|e| e.to_string())?;
    }
    Ok(AccountData {
        reference: required(fields, "reference")?,
        created_at: created_at(fields)?,
        default_asset,
        account_name: string(fields, "accountName")?,
        account_type: match string(fields, "type")? {
            Some(t) => AccountType::parse(&t).map_err(|e| e.to_string())?,
            None => AccountType::Unknown,
        },
        raw: Some(raw.to_string()),
        metadata: metadata(fields)?,
    })
}

fn balance(fields: &Fields<'_>) -> Result<BalanceData, String> {
    let asset = required(fields, "asset")?;
    check_asset("asset", &asset).map_err(|e| e.to_string())?;
    Ok(BalanceData {
        account_reference: required(fields, "accountReference")?,
        asset,
        balance: Amount::balance("balance", integer(fields, "balance")?)
            .map_err(|e| e.to_string())?,
        at: created_at(fields)?,
    })
}

/// Parses one object (a whole file or one line).
pub fn parse(text: &str) -> Result<Record, String> {
    let top = fields(text)?;
    let Some(kind) = string(&top, "kind")? else {
        return payment(&top, text.trim()).map(Record::Payment);
    };
    let inner = |name: &str| -> Result<(Fields<'_>, &str), String> {
        let raw = top
            .get(name)
            .ok_or_else(|| format!("{name}: is required when kind is {kind:?}"))?;
        Ok((
            fields(raw.get()).map_err(|e| format!("{name}: {e}"))?,
            raw.get(),
        ))
    };
    match kind.as_str() {
        "payment" => {
            let (f, raw) = inner("payment")?;
            payment(&f, raw).map(Record::Payment)
        }
        "account" => {
            let (f, raw) = inner("account")?;
            account(&f, raw).map(Record::Account)
        }
        "balance" => {
            let (f, _) = inner("balance")?;
            balance(&f).map(Record::Balance)
        }
        other => Err(format!(
            "kind: unknown value {other:?} (expected payment, account or balance)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_parse_and_amounts_stay_exact() {
        let bare = r#"{"reference":"p1","amount":1234567890123456789012345678901234567890,
            "asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"visa",
            "createdAt":"2026-01-01T00:00:00Z"}"#;
        let Record::Payment(p) = parse(bare).unwrap() else {
            panic!()
        };
        assert_eq!(
            p.amount.as_str(),
            "1234567890123456789012345678901234567890"
        );
        assert!(
            p.raw
                .unwrap()
                .contains("1234567890123456789012345678901234567890")
        );

        let wrapped = r#"{"kind":"account","account":{"reference":"a","createdAt":"2026-01-01T00:00:00Z","type":"INTERNAL"}}"#;
        assert!(matches!(parse(wrapped).unwrap(), Record::Account(_)));
        let balance = r#"{"kind":"balance","balance":{"accountReference":"a","asset":"EUR/2","balance":-5,"createdAt":"2026-01-01T00:00:00Z"}}"#;
        let Record::Balance(b) = parse(balance).unwrap() else {
            panic!()
        };
        assert_eq!(b.balance.as_str(), "-5");
    }

    #[test]
    fn the_guide_s_created_at_and_any_scheme_case_are_accepted() {
        let guide = r#"{"reference":"g","amount":5,"asset":"EUR/2","type":"PAY-IN",
            "status":"SUCCEEDED","scheme":"SEPA Credit","created_at":"2026-02-03T04:05:06Z"}"#;
        let Record::Payment(p) = parse(guide).expect("guide form") else {
            panic!("not a payment")
        };
        assert_eq!(p.created_at.to_rfc3339(), "2026-02-03T04:05:06+00:00");
        assert_eq!(p.scheme, Scheme::SepaCredit);
        let account =
            r#"{"kind":"account","account":{"reference":"a","created_at":"2026-01-01T00:00:00Z"}}"#;
        assert!(matches!(
            parse(account).expect("account"),
            Record::Account(_)
        ));
        // createdAt wins when both are given; a bad created_at is named as such.
        let both = guide.replace(
            r#""created_at""#,
            r#""createdAt":"2026-01-01T00:00:00Z","created_at""#,
        );
        let Record::Payment(p) = parse(&both).expect("both") else {
            panic!("not a payment")
        };
        assert_eq!(p.created_at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        let bad = guide.replace("2026-02-03T04:05:06Z", "soon");
        assert!(parse(&bad).expect_err("bad").contains("created_at"));
        let missing = guide.replace(r#","created_at":"2026-02-03T04:05:06Z""#, "");
        assert!(parse(&missing).expect_err("missing").contains("createdAt"));
    }

    #[test]
    fn bad_objects_name_the_field_and_the_problem() {
        let base = |field: &str, value: &str| {
            let mut obj = serde_json::json!({"reference":"p","amount":1,"asset":"EUR/2",
                "type":"PAY-IN","status":"SUCCEEDED","createdAt":"2026-01-01T00:00:00Z"});
            if value.is_empty() {
                obj.as_object_mut().unwrap().remove(field);
                obj.to_string()
            } else {
                obj.to_string().replace(
                    &format!("\"{field}\":{}", obj[field]),
                    &format!("\"{field}\":{value}"),
                )
            }
        };
        for (field, value, expect) in [
            ("amount", "-1", "negative"),
            ("amount", "1.5", "integer"),
            ("amount", "\"12\"", "JSON integer"),
            ("amount", &"9".repeat(101), "10^100"),
            ("type", "\"PAYIN\"", "unknown value"),
            ("status", "\"DONE\"", "unknown value"),
            ("reference", "", "required"),
            ("createdAt", "\"yesterday\"", "RFC 3339"),
            ("asset", "\"euro\"", "asset"),
            ("reference", "42", "must be a string"),
        ] {
            let text = base(field, value);
            let err = parse(&text).unwrap_err();
            assert!(err.contains(field) && err.contains(expect), "{text}: {err}");
        }
        assert!(parse("[1]").unwrap_err().contains("JSON object"));
        assert!(
            parse("{\"reference\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(parse("\u{0}\u{1}binary").is_err());
    }
}
