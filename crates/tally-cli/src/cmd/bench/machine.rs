//! The machine a benchmark ran on: CPUs, memory, kernel and build, printed with the figures so that
//! a result is only compared with results from the same kind of machine and build.

use std::fs;
use std::time::Duration;

/// What the figures depend on besides tally itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// CPUs this process may run on.
    pub cpus: usize,
    /// The CPU model, when the system says.
    pub cpu_model: Option<String>,
    /// Installed memory in GiB, when the system says.
    pub memory_gib: Option<u64>,
    /// The operating system and kernel release.
    pub system: String,
    /// Whether this binary was built with optimizations (debug assertions off).
    pub release: bool,
}

impl Machine {
    /// Reads the facts of the machine this process runs on.
    pub fn current() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: field(&cpuinfo, "model name").map(str::to_owned),
            memory_gib: field(&meminfo, "MemTotal")
                .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| (kib + (1 << 19)) >> 20),
            system: format!("{} {}", std::env::consts::OS, kernel.trim())
                .trim()
                .to_owned(),
            release: !cfg!(debug_assertions),
        }
    }

    /// Prints the facts as two report lines.
    pub fn print(&self) {
        let memory = self
            .memory_gib
            .map(|gib| format!(", {gib} GiB RAM"))
            .unwrap_or_default();
        let model = self
            .cpu_model
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        println!(
            "  machine              {} CPUs{model}{memory}, {}",
            self.cpus, self.system
        );
        println!(
            "  build                tally {}, {}",
            env!("CARGO_PKG_VERSION"),
            if self.release {
                "release"
            } else {
                "debug (figures not comparable)"
            }
        );
    }
}

/// Returns the CPU time this process's live threads have used so far (Linux; `None` elsewhere).
/// Compared before and after a step, it tells the work done from the time waited for a CPU when
/// other processes share the machine; threads that exit in between are not counted.
pub fn cpu_time() -> Option<Duration> {
    let mut nanos: u64 = 0;
    for task in fs::read_dir("/proc/self/task").ok()? {
        let stat = fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        nanos += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(nanos))
}

/// Returns the value of the first `name: value` line of a `/proc` file.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_read() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nMemTotal:       24576000 kB\n";
        assert_eq!(field(text, "model name"), Some("AMD EPYC"));
        assert_eq!(field(text, "MemTotal"), Some("24576000 kB"));
        assert_eq!(field(text, "flags"), None);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let Some(before) = cpu_time() else {
            return;
        };
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time().is_some_and(|after| after > before));
    }
}
