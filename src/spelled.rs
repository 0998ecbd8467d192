//! Enums with one spelling per variant, defined once: [`spelled_enum!`] takes the list of
//! variants with their spellings and derives the rest from it (every variant, the spelling,
//! `Display`, `FromStr` and serde), so that no second list can fall out of step.

/// Declares a fieldless enum from one list of `Variant (= number) => "spelling"` lines (each
/// with its doc comment and any attribute, `#[default]` say), and derives from it:
/// - `ALL`: every variant, in the list's order;
/// - `as_str`: the variant's spelling;
/// - `Display` (the spelling), `FromStr` (a spelling back, or an error naming the enum and the
///   text), and serde's `Serialize` and `Deserialize` as the spelling.
macro_rules! spelled_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $(= $number:literal)? => $text:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant $(= $number)?, )*
        }

        impl $name {
            /// Every variant, in the order of its definition.
            pub const ALL: [$name; [$(stringify!($variant)),*].len()] = [$($name::$variant),*];

            /// The variant's one spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                $name::ALL
                    .into_iter()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| format!("{text:?} is no {}", stringify!($name)))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use spelled_enum;

#[cfg(test)]
mod tests {
    spelled_enum! {
        /// A test enum.
        enum Colour {
            /// Red.
            Red => "red",
            /// Dark blue.
            DarkBlue = 7 => "dark_blue",
        }
    }

    #[test]
    fn one_list_gives_every_variant_its_spelling_both_ways() {
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue]);
        assert_eq!(Colour::DarkBlue as u8, 7);
        assert_eq!(Colour::DarkBlue.to_string(), "dark_blue");
        assert_eq!("red".parse::<Colour>(), Ok(Colour::Red));
        assert_eq!(
            "Red".parse::<Colour>(),
            Err("\"Red\" is no Colour".to_string())
        );
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"dark_blue\""
        );
        let read: Colour = serde_json::from_str("\"dark_blue\"").unwrap();
        assert_eq!(read, Colour::DarkBlue);
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
    }
}
