use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

// China time is `+08:00`: an offset without its minutes, or past a day, is refused.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(from = now_datetime("+8"))]
    pub timestamp: String,
    #[token(from = now_datetime("+24:00"))]
    pub sent_at: String,
    // SNAP BI's Jakarta time is `+07:00`; a zone name is no offset.
    #[token(header, rename = "X-TIMESTAMP", from = now_rfc3339("WIB"))]
    pub x_timestamp: String,
}

fn main() {}
