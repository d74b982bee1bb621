//! Tables for `berth images`, and the human-readable sizes and ages every table uses.

use anyhow::Result;
use berth_image::ImageStore;

use super::images::ImagesArgs;

pub(super) fn images(s: &ImageStore, a: &ImagesArgs) -> Result<()> {
    let list = s.list()?;
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if a.format != "table" {
        anyhow::bail!("images: unknown format {:?} (table or json)", a.format);
    }
    let id = |d: &berth_image::Digest| {
        if a.no_trunc {
            d.to_string()
        } else {
            d.short().to_string()
        }
    };
    if a.quiet {
        let mut seen = Vec::new();
        for i in &list {
            let x = id(&i.id);
            if !seen.contains(&x) {
                println!("{x}");
                seen.push(x);
            }
        }
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut rows = vec![{
        let mut h = vec!["REPOSITORY", "TAG"];
        if a.digests {
            h.push("DIGEST");
        }
        h.extend(["IMAGE ID", "CREATED", "SIZE"]);
        h.into_iter().map(String::from).collect::<Vec<_>>()
    }];
    for i in &list {
        let mut r = vec![i.repository.clone(), i.tag.clone()];
        if a.digests {
            r.push(i.digest.to_string());
        }
        r.push(id(&i.id));
        r.push(
            i.created
                .as_deref()
                .and_then(parse_rfc3339)
                .map(|t| ago(now - t))
                .unwrap_or_else(|| "N/A".into()),
        );
        r.push(human_size(i.size));
        rows.push(r);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("   ").trim_end());
    }
    Ok(())
}

/// "YYYY-MM-DDTHH:MM:SS..." → unix seconds (UTC; offsets other than Z are ignored).
pub(super) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // days_from_civil
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// docker's CREATED column: `units.HumanDuration` + " ago" (as `ps` uses it).
pub(super) fn ago(secs: i64) -> String {
    let ns = secs.max(0).saturating_mul(1_000_000_000);
    format!("{} ago", berth_engine::container::ps::human_duration(ns))
}

/// docker's `units.HumanSize`: powers of 1000, three significant digits.
pub(super) fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{}", units[i])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_times() {
        assert_eq!(super::human_size(999), "999B");
        assert_eq!(super::human_size(1_500_000), "1.5MB");
        assert_eq!(super::parse_rfc3339("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(
            super::parse_rfc3339("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000)
        );
        assert_eq!(super::human_size(12_345_678), "12.3MB");
        assert_eq!(super::human_size(123_456_789), "123MB");
        assert_eq!(super::ago(7200), "2 hours ago");
        assert_eq!(super::ago(0), "Less than a second ago");
        assert_eq!(super::ago(90), "About a minute ago");
    }
}
