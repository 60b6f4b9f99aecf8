//! Listing mirrors a page at a time: the filter an operator can set (status, peer, hold, name),
//! the page asked for, and the page answered with its totals.
//!
//! Policy: every list a client can ask for is bounded. A page is at most [`MAX_PER_PAGE`]
//! mirrors; filters are parsed here, once, into typed values, so a bad one is refused naming the
//! argument before any storage is touched. The catalog applies the filter in SQL (one count, one
//! page), so a list costs the same at 10 mirrors and at 10,000.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::mirror::{MirrorStatus, MirrorView};

/// The most mirrors one page holds.
pub const MAX_PER_PAGE: u32 = 1000;
/// Page size of `GET /api/mirrors` when the client does not say.
pub const DEFAULT_PER_PAGE: u32 = 1000;

/// Which holds a listed mirror has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldFilter {
    /// No hold at all.
    None,
    /// Any hold.
    Any,
    /// Paused by a user.
    User,
    /// Held by a maintenance window.
    Maintenance,
}

impl HoldFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldFilter::None => "none",
            HoldFilter::Any => "any",
            HoldFilter::User => "user",
            HoldFilter::Maintenance => "maintenance",
        }
    }
}

impl fmt::Display for HoldFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HoldFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => HoldFilter::None,
            "any" => HoldFilter::Any,
            "user" => HoldFilter::User,
            "maintenance" => HoldFilter::Maintenance,
            other => return Err(format!("unknown hold filter {other:?} (none, any, user or maintenance)")),
        })
    }
}

/// What to list: live (not dropped) mirrors matching every given part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorFilter {
    pub status: Option<MirrorStatus>,
    /// A peer id: mirrors reading from it or writing to it.
    pub peer: Option<String>,
    pub hold: Option<HoldFilter>,
    /// Part of the name, any case.
    pub name: Option<String>,
}

/// The longest name fragment a filter takes (mirror names are shorter still).
const MAX_NAME_FILTER: usize = 200;

impl MirrorFilter {
    /// Parses the filter arguments as a client sends them; blank means "any". A bad argument is
    /// refused with a message naming it.
    pub fn parse(
        status: Option<&str>,
        peer: Option<&str>,
        hold: Option<&str>,
        name: Option<&str>,
    ) -> Result<Self, String> {
        // A NUL would reach no database: Postgres refuses it in text.
        for (field, v) in [("status", status), ("peer", peer), ("hold", hold), ("name", name)] {
            if v.is_some_and(|v| v.contains('\0')) {
                return Err(format!("{field}: contains a NUL character"));
            }
        }
        let given = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let status = match given(status) {
            Some(s) => {
                let s: MirrorStatus = s.parse().map_err(|e| format!("status: {e}"))?;
                if s == MirrorStatus::Dropped {
                    return Err("status: dropped mirrors are not listed".into());
                }
                Some(s)
            }
            None => None,
        };
        let hold = given(hold).map(|h| h.parse().map_err(|e| format!("hold: {e}"))).transpose()?;
        let name = given(name);
        if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME_FILTER) {
            return Err(format!("name: at most {MAX_NAME_FILTER} characters"));
        }
        Ok(MirrorFilter { status, peer: given(peer), hold, name })
    }

    /// The `LIKE` pattern for the name part: lower case, with `%`, `_` and `\` escaped (the
    /// query says `ESCAPE '\'`), so a fragment matches literally.
    pub fn name_pattern(&self) -> Option<String> {
        self.name.as_ref().map(|n| {
            let mut p = String::from("%");
            for c in n.to_lowercase().chars() {
                if matches!(c, '%' | '_' | '\\') {
                    p.push('\\');
                }
                p.push(c);
            }
            p.push('%');
            p
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == MirrorFilter::default()
    }
}

/// Which page: `page` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageRequest {
    /// Parses `page` and `per_page` as a client sends them, naming the bad one.
    pub fn parse(page: Option<i64>, per_page: Option<i64>, default_per_page: u32) -> Result<Self, String> {
        let page = match page {
            None => 0,
            Some(p) if p < 0 => return Err("page: counts from 0".into()),
            // Far past the end is simply empty; the offset stays in range.
            Some(p) => u32::try_from(p).unwrap_or(u32::MAX).min(1_000_000),
        };
        let per_page = match per_page {
            None => default_per_page,
            Some(n) if (1..=i64::from(MAX_PER_PAGE)).contains(&n) => n as u32,
            Some(_) => return Err(format!("per_page: between 1 and {MAX_PER_PAGE}")),
        };
        Ok(PageRequest { page, per_page })
    }

    pub fn offset(self) -> u64 {
        u64::from(self.page) * u64::from(self.per_page)
    }
}

/// One page of mirrors as pages show them, with how many match the filter and how many live
/// mirrors there are in each status (unfiltered: what the status filter would find).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorPage {
    pub items: Vec<MirrorView>,
    /// Mirrors matching the filter, on every page.
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    /// Live mirrors per status, every status listed (zero included), in lifecycle order.
    pub by_status: Vec<(MirrorStatus, u64)>,
}

impl MirrorPage {
    /// How many pages the filter's mirrors fill (at least one, empty or not).
    pub fn pages(&self) -> u32 {
        let per = u64::from(self.per_page.max(1));
        u32::try_from(self.total.div_ceil(per).max(1)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_arguments_mean_any_and_bad_ones_name_themselves() {
        assert!(MirrorFilter::parse(Some(" "), Some(""), None, Some("")).unwrap().is_empty());
        assert!(MirrorFilter::parse(Some("sleeping"), None, None, None).unwrap_err().starts_with("status:"));
        assert!(MirrorFilter::parse(Some("dropped"), None, None, None).unwrap_err().starts_with("status:"));
        assert!(MirrorFilter::parse(None, None, Some("both"), None).unwrap_err().starts_with("hold:"));
        assert!(MirrorFilter::parse(None, Some("a\0b"), None, None).unwrap_err().starts_with("peer:"));
        let long = "x".repeat(201);
        assert!(MirrorFilter::parse(None, None, None, Some(&long)).unwrap_err().starts_with("name:"));
        let f = MirrorFilter::parse(Some("paused"), Some("p1"), Some("user"), Some(" Orders ")).unwrap();
        assert_eq!(f.status, Some(MirrorStatus::Paused));
        assert_eq!(f.hold, Some(HoldFilter::User));
        assert_eq!(f.name.as_deref(), Some("Orders"));
    }

    #[test]
    fn name_patterns_match_literally() {
        let f = MirrorFilter { name: Some("A_b%c\\".into()), ..Default::default() };
        assert_eq!(f.name_pattern().unwrap(), "%a\\_b\\%c\\\\%");
    }

    #[test]
    fn pages_are_bounded_and_bad_ones_name_themselves() {
        assert_eq!(PageRequest::parse(None, None, 50).unwrap(), PageRequest { page: 0, per_page: 50 });
        assert!(PageRequest::parse(Some(-1), None, 50).unwrap_err().starts_with("page:"));
        assert!(PageRequest::parse(None, Some(0), 50).unwrap_err().starts_with("per_page:"));
        assert!(PageRequest::parse(None, Some(1001), 50).unwrap_err().starts_with("per_page:"));
        let far = PageRequest::parse(Some(i64::MAX), Some(1000), 50).unwrap();
        assert_eq!(far.offset(), 1_000_000 * 1000);
    }
}
