//! What went wrong while parsing, and where.

use core::fmt;

/// A field of a pressure-file line, in the order the kernel writes them.
/// A future kernel's field that psi learns to check would be a new
/// variant: non-exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `avg10`.
    Avg10,
    /// `avg60`.
    Avg60,
    /// `avg300`.
    Avg300,
    /// `total`.
    Total,
}

impl Field {
    /// The kernel's name for the field.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Avg10 => "avg10",
            Field::Avg60 => "avg60",
            Field::Avg300 => "avg300",
            Field::Total => "total",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input has neither a `some` nor a `full` line.
    #[error("no `some` or `full` line: this is not a pressure file")]
    NoRecord,
    /// A `some` or `full` line appears twice.
    #[error("the `{0}` line appears twice")]
    DuplicateLine(crate::Line),
    /// A field is missing, misnamed or out of order.
    #[error("expected `{0}=`")]
    ExpectedField(Field),
    /// The line ends before this field.
    #[error("the line ends before {0}")]
    Truncated(Field),
    /// A field has no digits.
    #[error("{0} has no value")]
    EmptyValue(Field),
    /// A field's value holds something other than ASCII digits where digits belong.
    #[error("invalid digit in {0}")]
    InvalidDigit(Field),
    /// An average does not have exactly two decimals.
    #[error("{0} must have exactly two decimals")]
    Decimals(Field),
    /// A value does not fit: `total` beyond `u64`, an average beyond `u32` hundredths.
    #[error("{0} is too large")]
    Overflow(Field),
}

/// The error from [`parse`](crate::parse): what was wrong, and where.
///
/// Displays as a sentence, e.g. `invalid digit in avg60 (byte 17, line 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} (byte {offset}, line {line})")]
pub struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
    line: usize,
}

impl ParseError {
    pub(crate) const fn new(kind: ParseErrorKind, offset: usize, line: usize) -> Self {
        ParseError { kind, offset, line }
    }

    /// What was wrong.
    pub const fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The byte offset in the input where the problem was found; at most the
    /// input's length (equal to it when the input ended too early).
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The line number, counting from 1.
    pub const fn line(&self) -> usize {
        self.line
    }
}
