//! Kubernetes-style resource quantities, as the SDK's `set_cpu_request('500m')` and
//! `set_memory_limit('1G')` write them.

/// CPU in thousandths of a core, memory in bytes, and whole GPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub gpus: u32,
}

impl Resources {
    pub fn fits_within(&self, free: &Resources) -> bool {
        self.cpu_millis <= free.cpu_millis
            && self.memory_bytes <= free.memory_bytes
            && self.gpus <= free.gpus
    }

    /// What is left of `self` once `used` is taken.
    pub fn minus(&self, used: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(used.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(used.memory_bytes),
            gpus: self.gpus.saturating_sub(used.gpus),
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.cpu_millis += other.cpu_millis;
        self.memory_bytes += other.memory_bytes;
        self.gpus += other.gpus;
    }

    pub fn subtract(&mut self, other: &Resources) {
        *self = self.minus(other);
    }
}

/// A task's limits: what a backend that can enforce them (Docker) caps it at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpu_millis: Option<u64>,
    pub memory_bytes: Option<u64>,
}

/// `"2"`, `"0.5"`, `"500m"` → millicores.
pub fn parse_cpu_millis(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad =
        || format!("invalid CPU quantity {text:?} (expected e.g. \"2\", \"0.5\" or \"500m\")");
    if let Some(m) = t.strip_suffix('m') {
        return m
            .parse::<f64>()
            .ok()
            .filter(|v| *v >= 0.0)
            .map(|v| v.ceil() as u64)
            .ok_or_else(bad);
    }
    t.parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|v| (v * 1000.0).ceil() as u64)
        .ok_or_else(bad)
}

/// `"1G"`, `"512Mi"`, `"1.5Gi"`, `"1000000"` → bytes.
pub fn parse_memory_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("invalid memory quantity {text:?} (expected e.g. \"512Mi\" or \"1G\")");
    const UNITS: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, factor) = UNITS
        .iter()
        .find_map(|(suffix, factor)| t.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((t, 1.0));
    number
        .parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|v| (v * factor).ceil() as u64)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_cpu_millis("2"), Ok(2000));
        assert_eq!(parse_cpu_millis("0.5"), Ok(500));
        assert_eq!(parse_cpu_millis("250m"), Ok(250));
        assert!(parse_cpu_millis("two").is_err());
        assert_eq!(parse_memory_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_memory_bytes("512Mi"), Ok(512 << 20));
        assert_eq!(parse_memory_bytes("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory_bytes("1000"), Ok(1000));
        assert!(parse_memory_bytes("-1G").is_err());
        assert!(parse_memory_bytes("lots").is_err());
    }
}
