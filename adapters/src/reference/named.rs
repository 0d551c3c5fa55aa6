//! Enums named on the command line (`--strategy lww`, `--bug local-reads`):
//! one macro for the variant <-> name table, and the error an unknown name
//! gives. Below both `config.rs` and `bugs.rs`.

use thiserror::Error;

/// A flag value that names no variant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("--{flag}: unknown value {value:?} (expected one of: {expected})")]
pub struct UnknownValue {
    pub flag: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $flag:literal, { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::reference::named::UnknownValue;
            fn from_str(s: &str) -> Result<Self, $crate::reference::named::UnknownValue> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err($crate::reference::named::UnknownValue {
                        flag: $flag,
                        value: s.to_string(),
                        expected: [$($s),+].join(", "),
                    }),
                }
            }
        }
    };
}
pub(crate) use named_enum;
