//! Splitting a merged group of commands into rounds. PostgreSQL refuses to touch one row twice
//! in one `INSERT … ON CONFLICT DO UPDATE`, and `UPDATE … FROM` applies only one of two source
//! rows for the same target, so one multi-row statement never carries two commands that write
//! the same row: the second starts the next round, which keeps their order.

use std::collections::HashSet;
use std::hash::Hash;

/// Consecutive runs of `items` in which no key (as given by `keys`) appears in two items.
pub fn rounds<'a, T, K, I>(items: &'a [T], keys: impl Fn(&'a T) -> I) -> Vec<&'a [T]>
where
    K: Hash + Eq,
    I: IntoIterator<Item = K>,
{
    let mut out = Vec::new();
    let mut start = 0;
    let mut seen: HashSet<K> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let own: Vec<K> = keys(item).into_iter().collect();
        if own.iter().any(|k| seen.contains(k)) {
            out.push(&items[start..i]);
            start = i;
            seen.clear();
        }
        seen.extend(own);
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rounds;

    #[test]
    fn a_repeated_key_starts_a_new_round_and_order_is_kept() {
        let items = [1, 2, 1, 3, 2, 2];
        let split = rounds(&items, |i| [*i]);
        assert_eq!(split, vec![&[1, 2][..], &[1, 3, 2][..], &[2][..]]);
        assert!(rounds(&[] as &[i32], |i| [*i]).is_empty());
    }

    #[test]
    fn an_item_may_repeat_its_own_keys() {
        let items = [vec![1, 1], vec![2], vec![3, 1]];
        let split = rounds(&items, |v| v.clone());
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].len(), 2);
    }
}
