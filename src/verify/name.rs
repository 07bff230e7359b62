//! Where a file belongs, from its name: `client_<id>_<n>_<stamp>` (one stream, stream 0) or
//! `client_<id>_<stream>_<n>_<stamp>`, the stamp `YYYY-mm-dd_HH.MM.SS`.

/// The identity a data file's name gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NameIdentity {
    /// The client id.
    pub client_id: u32,
    /// The stream (0 when the name carries none).
    pub stream: u32,
    /// The file's sequence number `n`.
    pub file_seq: u64,
}

/// Whether `s` is `YYYY-mm-dd` (`sep` `-`) or `HH.MM.SS` (`sep` `.`): digit groups of the
/// given lengths.
fn stamp_part(s: &str, sep: char, lens: &[usize]) -> bool {
    let groups: Vec<&str> = s.split(sep).collect();
    groups.len() == lens.len()
        && groups
            .iter()
            .zip(lens)
            .all(|(g, &n)| g.len() == n && g.bytes().all(|b| b.is_ascii_digit()))
}

/// The identity in a data file's name, or `None` for a name of another shape.
///
/// ```
/// use loadmon::verify::{parse_file_name, NameIdentity};
/// let id = parse_file_name("client_100_2_7_2026-12-05_10.11.12").unwrap();
/// assert_eq!(id, NameIdentity { client_id: 100, stream: 2, file_seq: 7 });
/// assert_eq!(parse_file_name("client_100_7_2026-12-05_10.11.12").unwrap().stream, 0);
/// assert!(parse_file_name("notes.txt").is_none());
/// ```
pub fn parse_file_name(name: &str) -> Option<NameIdentity> {
    let rest = name.strip_prefix("client_")?;
    let parts: Vec<&str> = rest.split('_').collect();
    if parts.len() < 4 || parts.len() > 5 {
        return None;
    }
    let (nums, stamp) = parts.split_at(parts.len() - 2);
    if !stamp_part(stamp[0], '-', &[4, 2, 2]) || !stamp_part(stamp[1], '.', &[2, 2, 2]) {
        return None;
    }
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let client_id = u32::try_from(num(nums[0])?).ok()?;
    let (stream, file_seq) = match nums {
        [_, n] => (0, num(n)?),
        [_, s, n] => (u32::try_from(num(s)?).ok()?, num(n)?),
        _ => return None,
    };
    Some(NameIdentity {
        client_id,
        stream,
        file_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_other_shapes_are_none() {
        for bad in [
            "client_100_2026-12-05_10.11.12",
            "client_x_1_2026-12-05_10.11.12",
            "client_100_1_2026-12-05",
            "client_100_1_2026-12-05_10.11",
            "client_99999999999_1_2026-12-05_10.11.12",
            "client_1_2_3_4_2026-12-05_10.11.12",
            "client_+1_2_2026-12-05_10.11.12",
            ".loadmon_probe_1_0",
            "",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }
}
