//! Test data shared by the integration tests.

/// The real files captured on this machine, by name.
pub const REAL: &[(&str, &[u8])] = &[
    (
        "cgroup-cpu-stressed",
        include_bytes!("../data/cgroup-cpu-stressed"),
    ),
    ("cgroup-io", include_bytes!("../data/cgroup-io")),
    ("cgroup-memory", include_bytes!("../data/cgroup-memory")),
    ("cpu-some-only", include_bytes!("../data/cpu-some-only")),
    ("irq-full-only", include_bytes!("../data/irq-full-only")),
    ("max-values", include_bytes!("../data/max-values")),
    ("system-cpu", include_bytes!("../data/system-cpu")),
    ("system-io", include_bytes!("../data/system-io")),
    ("system-memory", include_bytes!("../data/system-memory")),
];
