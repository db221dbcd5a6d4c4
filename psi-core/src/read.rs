//! Reading pressure files and cgroups (feature `std`).
