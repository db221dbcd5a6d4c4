//! What the commands share to talk to people: styled text and tables
//! ([`style`]), the terminal ([`term`]) and the wall clock ([`clock`]).

pub mod clock;
pub mod style;
pub mod term;
