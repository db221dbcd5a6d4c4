//! Finding the monitored container by its pid_flag, and its cgroup (feature `std`).
