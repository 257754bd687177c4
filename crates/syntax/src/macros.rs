//! Shared boilerplate for the validated string newtypes.

/// Implements the common API of a validated `String` newtype.
///
/// `$name` must be a tuple struct over `String`; `$validate` is a
/// `fn(&str) -> Result<(), &'static str>` that fully checks the input.
macro_rules! string_newtype {
    ($name:ident, $kind:expr, $validate:path) => {
        impl $name {
            #[doc = concat!("Parses and validates a [`", stringify!($name), "`], copying the input.")]
            pub fn parse(s: &str) -> Result<Self, $crate::SyntaxError> {
                match $validate(s) {
                    Ok(()) => Ok($name(s.to_owned())),
                    Err(reason) => Err($crate::SyntaxError::new($kind, reason)),
                }
            }

            /// The identifier exactly as it was parsed.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the value, returning the underlying `String`.
            pub fn into_string(self) -> String {
                self.0
            }

            /// Wraps a string that is already known to be valid.
            #[allow(dead_code)]
            pub(crate) fn from_validated(s: String) -> Self {
                debug_assert!($validate(&s).is_ok(), "from_validated on invalid input");
                $name(s)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::SyntaxError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl ::std::convert::TryFrom<&str> for $name {
            type Error = $crate::SyntaxError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                $name::parse(s)
            }
        }

        impl ::std::convert::TryFrom<String> for $name {
            type Error = $crate::SyntaxError;

            /// Validates in place, reusing the allocation.
            fn try_from(s: String) -> Result<Self, Self::Error> {
                match $validate(&s) {
                    Ok(()) => Ok($name(s)),
                    Err(reason) => Err($crate::SyntaxError::new($kind, reason)),
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        #[cfg(feature = "serde")]
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                $name::try_from(s).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}

pub(crate) use string_newtype;
