//! Helpers shared by the plugins: an allocation-free capability lookup mirroring
//! [`Pool::capability`], Python's `float()` for strings, Cinder's thin/thick switch, and
//! number formatting for reject reasons.

use kiln_plugin_sdk::{CapValue, Capacity, Pool, Request, Verdict};

/// How a check reports its answer: a [`Verdict`] with the reason (for `filter`, when the
/// host must explain), or a bare `bool` (for `accept`, the hot path). Checks are written once,
/// generic over the outcome; for `bool` the reason closures are never called, so the hot
/// path formats and allocates nothing per rejected pool.
pub(crate) trait Outcome: Sized {
    fn pass() -> Self;
    fn reject(why: impl FnOnce() -> String) -> Self;
}

impl Outcome for Verdict {
    fn pass() -> Self {
        Verdict::Pass
    }
    fn reject(why: impl FnOnce() -> String) -> Self {
        Verdict::Reject(why())
    }
}

impl Outcome for bool {
    fn pass() -> Self {
        true
    }
    fn reject(_why: impl FnOnce() -> String) -> Self {
        false
    }
}

/// A borrowed capability value (what [`Pool::capability`] returns, without cloning).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CapRef<'a> {
    Text(&'a str),
    Number(f64),
    Boolean(bool),
}

impl<'a> From<&'a CapValue> for CapRef<'a> {
    fn from(v: &'a CapValue) -> Self {
        match v {
            CapValue::Text(s) => CapRef::Text(s),
            CapValue::Number(n) => CapRef::Number(*n),
            CapValue::Boolean(b) => CapRef::Boolean(*b),
        }
    }
}

fn capacity_ref(c: Capacity) -> CapRef<'static> {
    match c {
        Capacity::Gb(v) => CapRef::Number(v),
        Capacity::Infinite => CapRef::Text("infinite"),
        Capacity::Unknown => CapRef::Text("unknown"),
    }
}

/// A capability name resolved once: a standard field, or a driver capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CapKey<'k> {
    Total,
    Free,
    Allocated,
    Provisioned,
    Reserved,
    Ratio,
    Thin,
    Thick,
    Volumes,
    Multiattach,
    PoolName,
    Zone,
    Driver(&'k str),
}

impl<'k> CapKey<'k> {
    pub(crate) fn of(key: &'k str) -> Self {
        match key {
            "total_capacity_gb" => CapKey::Total,
            "free_capacity_gb" => CapKey::Free,
            "allocated_capacity_gb" => CapKey::Allocated,
            "provisioned_capacity_gb" => CapKey::Provisioned,
            "reserved_percentage" => CapKey::Reserved,
            "max_over_subscription_ratio" => CapKey::Ratio,
            "thin_provisioning_support" => CapKey::Thin,
            "thick_provisioning_support" => CapKey::Thick,
            "total_volumes" => CapKey::Volumes,
            "multiattach" => CapKey::Multiattach,
            "pool_name" => CapKey::PoolName,
            "availability_zone" => CapKey::Zone,
            other => CapKey::Driver(other),
        }
    }

    /// [`Pool::capability`] without the clone: the standard fields under their Cinder
    /// names, then the driver's own capabilities. Kept identical to the SDK's (a test
    /// checks it).
    pub(crate) fn get<'a>(self, pool: &'a Pool) -> Option<CapRef<'a>> {
        Some(match self {
            CapKey::Total => capacity_ref(pool.total_capacity_gb),
            CapKey::Free => capacity_ref(pool.free_capacity_gb),
            CapKey::Allocated => CapRef::Number(pool.allocated_capacity_gb),
            CapKey::Provisioned => CapRef::Number(pool.provisioned_capacity_gb),
            CapKey::Reserved => CapRef::Number(f64::from(pool.reserved_percentage)),
            CapKey::Ratio => CapRef::Number(pool.max_over_subscription_ratio),
            CapKey::Thin => CapRef::Boolean(pool.thin_provisioning_support),
            CapKey::Thick => CapRef::Boolean(pool.thick_provisioning_support),
            CapKey::Volumes => CapRef::Number(pool.total_volumes as f64),
            CapKey::Multiattach => CapRef::Boolean(pool.multiattach),
            CapKey::PoolName => CapRef::Text(&pool.pool),
            CapKey::Zone => CapRef::Text(&pool.availability_zone),
            CapKey::Driver(k) => return pool.capabilities.get(k).map(CapRef::from),
        })
    }
}

/// [`Pool::capability`] without the clone.
pub(crate) fn capability<'a>(pool: &'a Pool, key: &str) -> Option<CapRef<'a>> {
    CapKey::of(key).get(pool)
}

/// Python's `float(s)` for a string: surrounding whitespace ignored, `inf` / `infinity` /
/// `nan` in any case, exponents, and `_` between digits.
pub(crate) fn py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if !t.contains('_') {
        return t.parse().ok();
    }
    let b = t.as_bytes();
    let mut cleaned = String::with_capacity(t.len());
    for (i, c) in t.char_indices() {
        if c == '_' {
            let digit_before = i > 0 && b[i - 1].is_ascii_digit();
            let digit_after = b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !(digit_before && digit_after) {
                return None;
            }
        } else {
            cleaned.push(c);
        }
    }
    cleaned.parse().ok()
}

/// Cinder's switch: a volume type with `provisioning:type` = `thick` disables the thin
/// provisioning logic of the capacity filter and weigher.
pub(crate) fn thin_requested(request: &Request) -> bool {
    request
        .volume_type
        .as_ref()
        .and_then(|t| t.extra_specs.get("provisioning:type"))
        .is_none_or(|v| v != "thick")
}

/// A reject reason, built without `format!` (rejections can be most of 1000 pools).
pub(crate) struct Reason(String);

impl Reason {
    pub(crate) fn new(text: &str) -> Self {
        let mut s = String::with_capacity(64);
        s.push_str(text);
        Reason(s)
    }

    /// Append text.
    pub(crate) fn s(mut self, text: &str) -> Self {
        self.0.push_str(text);
        self
    }

    /// Append a size: at most two decimals, trailing zeros dropped (10 → "10",
    /// 10.375 → "10.38").
    pub(crate) fn n(mut self, x: f64) -> Self {
        push_num(&mut self.0, x);
        self
    }

    /// Append a ratio: at most two decimals, at least one (20 → "20.0").
    pub(crate) fn r(mut self, x: f64) -> Self {
        let start = self.0.len();
        push_num(&mut self.0, x);
        if x.is_finite() && !self.0[start..].contains('.') {
            self.0.push_str(".0");
        }
        self
    }

    /// Append a capability value as Python prints it (text quoted).
    pub(crate) fn v(mut self, v: CapRef<'_>) -> Self {
        match v {
            CapRef::Text(t) => {
                self.0.push('\'');
                self.0.push_str(t);
                self.0.push('\'');
            }
            CapRef::Number(n) => self.0.push_str(&kiln_plugin_sdk::format_number(n)),
            CapRef::Boolean(true) => self.0.push_str("True"),
            CapRef::Boolean(false) => self.0.push_str("False"),
        }
        self
    }

    pub(crate) fn done(self) -> String {
        self.0
    }
}

fn push_num(s: &mut String, x: f64) {
    if !x.is_finite() || x.abs() >= 1e15 {
        s.push_str(&format!("{x:.0}"));
        return;
    }
    let cents = (x * 100.0).round() as i64;
    if cents < 0 {
        s.push('-');
    }
    let cents = cents.unsigned_abs();
    push_u64(s, cents / 100);
    let frac = cents % 100;
    if frac != 0 {
        s.push('.');
        s.push(char::from(b'0' + (frac / 10) as u8));
        if !frac.is_multiple_of(10) {
            s.push(char::from(b'0' + (frac % 10) as u8));
        }
    }
}

fn push_u64(s: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for b in &buf[i..] {
        s.push(char::from(*b));
    }
}

/// The host requires weights that are never NaN.
pub(crate) fn not_nan(w: f64) -> f64 {
    if w.is_nan() {
        0.0
    } else {
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pool;

    #[test]
    fn capability_lookup_matches_the_sdk() {
        let mut p = pool("h@b", "p");
        p.capabilities
            .insert("vendor_name".into(), CapValue::Text("Open Source".into()));
        p.capabilities.insert("iops".into(), CapValue::Number(5.5));
        p.capabilities
            .insert("dedup".into(), CapValue::Boolean(true));
        p.free_capacity_gb = Capacity::Infinite;
        p.total_capacity_gb = Capacity::Unknown;
        let keys = [
            "total_capacity_gb",
            "free_capacity_gb",
            "allocated_capacity_gb",
            "provisioned_capacity_gb",
            "reserved_percentage",
            "max_over_subscription_ratio",
            "thin_provisioning_support",
            "thick_provisioning_support",
            "total_volumes",
            "multiattach",
            "pool_name",
            "availability_zone",
            "vendor_name",
            "iops",
            "dedup",
            "missing",
        ];
        for k in keys {
            let ours = capability(&p, k).map(|c| match c {
                CapRef::Text(s) => CapValue::Text(s.to_string()),
                CapRef::Number(n) => CapValue::Number(n),
                CapRef::Boolean(b) => CapValue::Boolean(b),
            });
            assert_eq!(ours, p.capability(k), "{k}");
        }
    }

    #[test]
    fn py_float_accepts_what_python_accepts() {
        assert_eq!(py_float(" 12 "), Some(12.0));
        assert_eq!(py_float("1e3"), Some(1000.0));
        assert_eq!(py_float("1_000"), Some(1000.0));
        assert_eq!(py_float("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(py_float("Infinity"), Some(f64::INFINITY));
        assert!(py_float("nan").is_some_and(f64::is_nan));
        assert_eq!(py_float("infinite"), None);
        assert_eq!(py_float("_1"), None);
        assert_eq!(py_float("1__0"), None);
        assert_eq!(py_float(""), None);
        assert_eq!(py_float("abc"), None);
    }

    #[test]
    fn numbers_format_shortly() {
        let n = |x| Reason::new("").n(x).done();
        let r = |x| Reason::new("").r(x).done();
        assert_eq!(n(10.0), "10");
        assert_eq!(n(10.375), "10.38");
        assert_eq!(n(-101.5), "-101.5");
        assert_eq!(n(0.05), "0.05");
        assert_eq!(n(-0.001), "0");
        assert_eq!(n(1e20), "100000000000000000000");
        assert_eq!(n(f64::INFINITY), "inf");
        assert_eq!(r(20.0), "20.0");
        assert_eq!(r(21.5), "21.5");
        assert_eq!(r(4.0 / 3.0), "1.33");
        assert_eq!(r(f64::NAN), "NaN");
        let v = |c| Reason::new("").v(c).done();
        assert_eq!(v(CapRef::Text("x")), "'x'");
        assert_eq!(v(CapRef::Number(5.0)), "5");
        assert_eq!(v(CapRef::Boolean(false)), "False");
    }
}
