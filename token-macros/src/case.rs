//! `rename_all` casings, as serde spells them, applied to field and variant names.
//!
//! Names are computed here (not left to serde) because request fields go to headers,
//! query parameters and form bodies that serde never sees.

/// A `rename_all` casing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

/// Every accepted spelling, in the order the error message lists them.
pub const RULES: &[(&str, RenameRule)] = &[
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    pub fn parse(name: &str) -> Option<Self> {
        RULES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// Renames a snake_case field name.
    pub fn apply_to_field(self, field: &str) -> String {
        let field = field.strip_prefix("r#").unwrap_or(field);
        match self {
            Self::Lower | Self::Snake => field.to_owned(),
            Self::Upper | Self::ScreamingSnake => field.to_ascii_uppercase(),
            Self::Pascal | Self::Camel => {
                let mut out = String::new();
                let mut capitalize = self == Self::Pascal;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        out.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
            Self::Kebab => field.replace('_', "-"),
            Self::ScreamingKebab => field.replace('_', "-").to_ascii_uppercase(),
        }
    }

    /// Renames a PascalCase variant name.
    pub fn apply_to_variant(self, variant: &str) -> String {
        match self {
            Self::Pascal => variant.to_owned(),
            Self::Lower => variant.to_ascii_lowercase(),
            Self::Upper => variant.to_ascii_uppercase(),
            Self::Camel => {
                let mut chars = variant.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
            Self::Snake | Self::ScreamingSnake | Self::Kebab | Self::ScreamingKebab => {
                let mut snake = String::new();
                for (i, ch) in variant.char_indices() {
                    if i > 0 && ch.is_uppercase() {
                        snake.push('_');
                    }
                    snake.push(ch.to_ascii_lowercase());
                }
                match self {
                    Self::Snake => snake,
                    Self::ScreamingSnake => snake.to_ascii_uppercase(),
                    Self::Kebab => snake.replace('_', "-"),
                    _ => snake.replace('_', "-").to_ascii_uppercase(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_variants_take_every_casing() {
        assert_eq!(
            RenameRule::Camel.apply_to_field("refresh_token"),
            "refreshToken"
        );
        assert_eq!(
            RenameRule::Pascal.apply_to_field("refresh_token"),
            "RefreshToken"
        );
        assert_eq!(
            RenameRule::ScreamingKebab.apply_to_field("request_reference_no"),
            "REQUEST-REFERENCE-NO"
        );
        assert_eq!(
            RenameRule::Snake.apply_to_variant("InvalidGrant"),
            "invalid_grant"
        );
        assert_eq!(
            RenameRule::ScreamingSnake.apply_to_variant("InvalidRefreshToken"),
            "INVALID_REFRESH_TOKEN"
        );
        assert_eq!(
            RenameRule::Camel.apply_to_variant("InvalidGrant"),
            "invalidGrant"
        );
        assert_eq!(RenameRule::parse("camelcase"), None);
    }
}
