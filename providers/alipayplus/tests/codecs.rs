//! applyToken against the seed's literal samples, the result envelope, the config keys, and
//! RSA256 signatures checked against the `openssl` command line in both directions.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};
use time::macros::datetime;
use token_core::codec::{decode_response, encode_error, encode_response};
use token_core::{
    codec::Endpoint, codec::ErrorResponse, codec::FromContext, codec::RequestContext,
    codec::TokenResponse, error::EndpointError, error::ErrorKind, provider::Signer,
    secret::AccessToken, secret::AuthCode, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_alipayplus::signature::{self, Rsa256Signer};
use token_provider_alipayplus::{
    AlipayCode, AlipayError, AlipayExtras, AlipayPlusConfig, ApplyToken, ApplyTokenByCode,
    ApplyTokenResult,
};

const SEED_REQUEST: &str = r#"{
"acquirerId":"102218800000000001",
"pspId":"102208800000000001",
"refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
"grantType": "REFRESH_TOKEN"
}"#;
const SEED_RESPONSE: &str = r#"{
"result": {
"resultCode": "SUCCESS",
"resultMessage": "success",
"resultStatus": "S"
},
"accessToken": "281010033AB2F588D14B43238637264FCA5AAF35",
"accessTokenExpiryTime": "2022-06-06T12:12:12+08:00",
"refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
"refreshTokenExpiryTime": "2022-06-08T12:12:12+08:00",
"customerId":"2789808900000000000000001",
"userLoginId":"62-***2736"
}"#;

fn config() -> AlipayPlusConfig {
    serde_json::from_value(json!({
        "client_id": "CLIENT",
        "psp_id": "102208800000000001",
        "acquirer_id": "102218800000000001",
        "private_key": "unused here",
        "server_public_key": "unused here"
    }))
    .unwrap()
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn answer(body: &str) -> http::Response<Vec<u8>> {
    http::Response::new(body.as_bytes().to_vec())
}

fn now() -> time::OffsetDateTime {
    datetime!(2022-06-06 00:00 UTC)
}

#[test]
fn refresh_request_is_the_seed_request_and_the_mpp_reads_it_back() {
    let config = config();
    let session = TokenSet::<AlipayExtras>::new(AccessToken::new("at")).with_refresh_token(
        RefreshToken::new("2810100334F62CBC577F468AAC87CFC6C9107811"),
    );
    let apply = ApplyToken::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = apply.encode_request(&config.base_url).unwrap();
    assert_eq!(
        request.uri(),
        "https://open-sea-global.alipayplus.com/aps/api/v1/authorizations/applyToken"
    );
    assert_eq!(json_of(request.body()), json_of(SEED_REQUEST.as_bytes()));
    let seed = http::Request::post("/aps/api/v1/authorizations/applyToken")
        .header("content-type", "application/json")
        .body(SEED_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert_eq!(ApplyToken::decode_request(&seed).unwrap(), apply);
}

#[test]
fn auth_code_request_has_exactly_the_seed_fields_and_omits_absent_ones() {
    let mut config = config();
    config.acquirer_id = None;
    let code = AuthCode::new("code-1");
    let apply =
        ApplyTokenByCode::from_context(&RequestContext::new(&config).with_auth_code(&code, None))
            .unwrap();
    let request = apply.encode_request(&config.base_url).unwrap();
    assert_eq!(
        json_of(request.body()),
        json!({"pspId": "102208800000000001", "authCode": "code-1", "grantType": "AUTHORIZATION_CODE"})
    );
    assert_eq!(ApplyTokenByCode::decode_request(&request).unwrap(), apply);
    // The refresh grant is not an auth-code grant, and null counts as absent.
    let seed = http::Request::post("/")
        .header("content-type", "application/json")
        .body(SEED_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert!(
        ApplyTokenByCode::decode_request(&seed)
            .unwrap_err()
            .0
            .contains("grantType")
    );
    let with_null =
        br#"{"acquirerId":null,"pspId":"p","authCode":"c","grantType":"AUTHORIZATION_CODE"}"#;
    let request = http::Request::post("/")
        .header("content-type", "application/json")
        .body(with_null.to_vec())
        .unwrap();
    assert_eq!(
        ApplyTokenByCode::decode_request(&request)
            .unwrap()
            .acquirer_id,
        None
    );
}

#[test]
fn seed_response_decodes_with_offsets_and_extras_and_encodes_back() {
    let set = decode_response::<ApplyToken>(&answer(SEED_RESPONSE), now(), &[]).unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "281010033AB2F588D14B43238637264FCA5AAF35"
    );
    assert_eq!(
        set.access_expires_at,
        Some(datetime!(2022-06-06 12:12:12 +08:00))
    );
    assert_eq!(
        set.refresh_expires_at,
        Some(datetime!(2022-06-08 04:12:12 UTC))
    );
    assert_eq!(
        set.extras,
        AlipayExtras {
            customer_id: Some("2789808900000000000000001".into()),
            user_login_id: Some("62-***2736".into()),
        }
    );
    let sent = encode_response(&ApplyTokenResult::from_token_set(&set, now()));
    assert_eq!(sent.status(), 200);
    assert_eq!(json_of(sent.body()), json_of(SEED_RESPONSE.as_bytes()));
}

#[test]
fn the_result_envelope_is_classified_by_status_and_code() {
    let cases = [
        ("F", "INVALID_REFRESH_TOKEN", ErrorKind::ReauthRequired),
        ("F", "EXPIRED_REFRESH_TOKEN", ErrorKind::ReauthRequired),
        ("F", "USED_REFRESH_TOKEN", ErrorKind::ReauthRequired),
        ("F", "INVALID_AUTH_CODE", ErrorKind::ReauthRequired),
        ("F", "EXPIRED_AUTH_CODE", ErrorKind::ReauthRequired),
        ("F", "INVALID_SIGNATURE", ErrorKind::Misconfigured),
        ("F", "PARAM_ILLEGAL", ErrorKind::Misconfigured),
        ("F", "PROCESS_FAIL", ErrorKind::Rejected),
        ("F", "SOMETHING_NEW", ErrorKind::Rejected),
        ("U", "UNKNOWN_EXCEPTION", ErrorKind::OutcomeUnknown),
        ("U", "PROCESS_FAIL", ErrorKind::OutcomeUnknown),
        (
            "U",
            "REQUEST_TRAFFIC_EXCEED_LIMIT",
            ErrorKind::OutcomeUnknown,
        ),
    ];
    for (status, code, kind) in cases {
        let body =
            json!({"result": {"resultStatus": status, "resultCode": code, "resultMessage": "m"}});
        match decode_response::<ApplyToken>(&answer(&body.to_string()), now(), &[]) {
            Err(EndpointError::Provider(error)) => {
                assert_eq!((error.code.as_str(), error.kind), (code, kind), "{status}");
                assert_eq!(error.status, 200);
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    assert!(AlipayError::decode_error(http::StatusCode::OK, SEED_RESPONSE.as_bytes()).is_none());
    let expired = AlipayError::failed(AlipayCode::ExpiredRefreshToken, "expired");
    let sent = encode_error(&expired);
    assert_eq!(sent.status(), 200);
    assert_eq!(
        json_of(sent.body()),
        json!({"result": {"resultCode": "EXPIRED_REFRESH_TOKEN", "resultStatus": "F", "resultMessage": "expired"}})
    );
}

#[test]
fn config_needs_exactly_one_source_per_key_and_refuses_unknown_keys() {
    let both: AlipayPlusConfig = serde_json::from_value(json!({
        "client_id": "c", "psp_id": "p",
        "private_key": "k", "private_key_file": "/k.pem", "server_public_key": "p"
    }))
    .unwrap();
    assert!(
        both.signer()
            .unwrap_err()
            .to_string()
            .contains("private_key")
    );
    assert!(
        serde_json::from_value::<AlipayPlusConfig>(
            json!({"client_id": "c", "psp_id": "p", "pspid": "x"})
        )
        .is_err()
    );
    let shown = format!("{both:?}");
    assert!(
        shown.contains("private_key: Some(ClientSecret([redacted]))"),
        "{shown}"
    );
    assert!(
        !shown.contains("\"k\""),
        "the private key is redacted: {shown}"
    );
}

/// A key file that is not a regular file (a FIFO nobody writes to, a device) is refused at
/// once rather than read: opening a FIFO waits for a writer for ever, and a device such as
/// `/dev/zero` never ends. A regular file far larger than any key is refused unread too.
#[cfg(unix)]
#[test]
fn a_key_file_that_is_not_a_regular_file_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|status| status.success()) {
        eprintln!("SKIPPED: `mkfifo` is not available");
        return;
    }
    let huge = dir.path().join("huge.pem");
    std::fs::write(&huge, vec![b'A'; 4 << 20]).unwrap();
    for (key, path) in [
        ("private_key_file", &fifo),
        ("server_public_key_file", &fifo),
        ("private_key_file", &huge),
    ] {
        let mut config = json!({
            "client_id": "c", "psp_id": "p", "private_key": "k", "server_public_key": "p"
        });
        let text_key = key.trim_end_matches("_file");
        config.as_object_mut().unwrap().remove(text_key);
        config[key] = json!(path);
        let config: AlipayPlusConfig = serde_json::from_value(config).unwrap();
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(config.signer().map(drop).map_err(|e| e.to_string()));
        });
        let outcome = wait.recv_timeout(std::time::Duration::from_secs(5));
        let error = outcome
            .unwrap_or_else(|_| panic!("{key} = {}: still reading after 5 s", path.display()))
            .unwrap_err();
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}

// ---- RSA256 against openssl -----------------------------------------------------------------

fn openssl(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    Some(output)
}

/// A fresh PKCS#8 key pair made by openssl, or `None` (with a message) without openssl.
fn openssl_keys(dir: &Path) -> Option<(String, String)> {
    let made = openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
    );
    if !made.is_some_and(|o| o.status.success()) {
        eprintln!("SKIPPED: the `openssl` command line is not available");
        return None;
    }
    let public = openssl(
        dir,
        &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
    )
    .unwrap();
    assert!(public.status.success());
    Some((
        std::fs::read_to_string(dir.join("key.pem")).unwrap(),
        std::fs::read_to_string(dir.join("pub.pem")).unwrap(),
    ))
}

fn signature_bytes(header: &str) -> Vec<u8> {
    let value = header.split("signature=").nth(1).unwrap();
    let base64 = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(base64.as_bytes())
        .unwrap()
}

#[test]
fn our_request_signature_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, public)) = openssl_keys(dir.path()) else {
        return;
    };
    let signer = Rsa256Signer::from_pem("CLIENT", 2, &key, &public).unwrap();
    let mut request = http::Request::post(
        "https://open-sea-global.alipayplus.com/aps/api/v1/authorizations/applyToken",
    )
    .body(SEED_REQUEST.as_bytes().to_vec())
    .unwrap();
    let content = signer
        .sign_request(&mut request, datetime!(2022-06-06 12:12:12 +08:00))
        .unwrap();
    assert_eq!(request.headers()["Client-Id"], "CLIENT");
    assert_eq!(
        request.headers()["Request-Time"],
        "2022-06-06T12:12:12+08:00"
    );
    assert_eq!(
        request.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let header = request.headers()["Signature"].to_str().unwrap();
    assert!(
        header.starts_with("algorithm=RSA256, keyVersion=2, signature="),
        "{header}"
    );
    assert!(
        !header.contains('+') && !header.contains('/'),
        "URL-encoded: {header}"
    );
    let mut expected =
        b"POST /aps/api/v1/authorizations/applyToken\nCLIENT.2022-06-06T12:12:12+08:00.".to_vec();
    expected.extend_from_slice(SEED_REQUEST.as_bytes());
    assert_eq!(content, expected);

    std::fs::write(dir.path().join("content"), &content).unwrap();
    std::fs::write(dir.path().join("sig"), signature_bytes(header)).unwrap();
    let verified = openssl(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "content",
        ],
    )
    .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("Verified OK"));

    // And a tampered body does not.
    std::fs::write(dir.path().join("content"), [&content[..], b" "].concat()).unwrap();
    let tampered = openssl(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "content",
        ],
    )
    .unwrap();
    assert!(!tampered.status.success());
}

#[test]
fn an_openssl_response_signature_verifies_with_ours() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, public)) = openssl_keys(dir.path()) else {
        return;
    };
    let signer = Rsa256Signer::from_pem("CLIENT", 1, &key, &public).unwrap();
    let request = http::Request::post(
        "https://open-sea-global.alipayplus.com/aps/api/v1/authorizations/applyToken",
    )
    .body(SEED_REQUEST.as_bytes().to_vec())
    .unwrap();
    let time = "2022-06-06T12:12:13+08:00";
    let content = signature::content(
        request.method(),
        request.uri(),
        "CLIENT",
        time,
        SEED_RESPONSE.as_bytes(),
    );
    std::fs::write(dir.path().join("content"), &content).unwrap();
    let signed = openssl(
        dir.path(),
        &[
            "dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "content",
        ],
    )
    .unwrap();
    assert!(signed.status.success());
    let sig = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(dir.path().join("sig")).unwrap());
    let sig =
        percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC).to_string();

    let response = |body: &str| {
        http::Response::builder()
            .header("Client-Id", "CLIENT")
            .header("Response-Time", time)
            .header(
                "Signature",
                format!("algorithm=RSA256, keyVersion=1, signature={sig}"),
            )
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    signer.verify(&request, &response(SEED_RESPONSE)).unwrap();
    let forged = SEED_RESPONSE.replace("281010033AB2F588", "999999999AB2F588");
    let error = signer.verify(&request, &response(&forged)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    // An unsigned 2xx is refused; an unsigned 503 is left to the codec.
    assert!(signer.verify(&request, &answer(SEED_RESPONSE)).is_err());
    let mut unavailable = answer("busy");
    *unavailable.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    assert!(signer.verify(&request, &unavailable).is_ok());
}

#[cfg(feature = "sandbox")]
#[test]
fn a_client_id_answered_by_the_peer_is_not_quoted_in_the_signature_error() {
    use token_provider_alipayplus::sandbox::{client_private_key, mpp_public_key};
    let signer =
        Rsa256Signer::from_pem("CLIENT", 1, client_private_key(), mpp_public_key()).unwrap();
    let request = http::Request::post(
        "https://open-sea-global.alipayplus.com/aps/api/v1/authorizations/applyToken",
    )
    .body(SEED_REQUEST.as_bytes().to_vec())
    .unwrap();
    let echoed = "2810100334F62CBC577F468AAC87CFC6C9107811";
    let response = http::Response::builder()
        .header("Client-Id", echoed)
        .header("Response-Time", "2022-06-06T12:12:13+08:00")
        .header(
            "Signature",
            "algorithm=RSA256, keyVersion=1, signature=AAAA",
        )
        .body(SEED_RESPONSE.as_bytes().to_vec())
        .unwrap();
    let error = signer.verify(&request, &response).unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        shown.contains("`Client-Id` is not the expected `CLIENT`"),
        "{shown}"
    );
    assert!(!shown.contains(echoed), "{shown}");
}

/// The seed's applyToken request, signed by `signer` at the seed's time.
fn seed_request_signed_by(signer: &Rsa256Signer) -> http::Request<Vec<u8>> {
    let mut request = http::Request::post("https://x.example/aps/api/v1/authorizations/applyToken")
        .body(SEED_REQUEST.as_bytes().to_vec())
        .unwrap();
    signer
        .sign_request(&mut request, datetime!(2022-06-06 12:12:12 +08:00))
        .unwrap();
    request
}

/// A signed request with a second `Signature`, `Request-Time` or `Client-Id` header is
/// refused, whichever copy is valid: a proxy in front may read the other one.
#[cfg(feature = "sandbox")]
#[test]
fn a_signature_header_sent_twice_is_refused() {
    use token_provider_alipayplus::sandbox::{client_private_key, client_public_key};
    let signer =
        Rsa256Signer::from_pem("CLIENT", 1, client_private_key(), client_public_key()).unwrap();
    let signed = || seed_request_signed_by(&signer);
    signer.verify_request(&signed()).unwrap();
    for (name, other) in [
        (
            "Signature",
            "algorithm=RSA256, keyVersion=1, signature=AAAA",
        ),
        ("Request-Time", "2022-06-06T12:12:13+08:00"),
        ("Client-Id", "CLIENT"),
    ] {
        // The valid copy first, then another (the same value, for the client id).
        let mut request = signed();
        request
            .headers_mut()
            .append(name, http::HeaderValue::from_static(other));
        let error = signer.verify_request(&request).unwrap_err();
        assert!(error.to_string().contains("repeated"), "{name}: {error}");
    }
}

/// openssl's key as PEM, as DER, and as the bare Base64 of the DER that Alipay+'s portal
/// shows: the three sign the same bytes (PKCS#1 v1.5 is deterministic) and verify each other.
#[test]
fn keys_read_from_pem_der_and_bare_base64_sign_alike() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, public)) = openssl_keys(dir.path()) else {
        return;
    };
    let der = |pem: &str| {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    let bare = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let signers = [
        Rsa256Signer::from_pem("CLIENT", 1, &key, &public).unwrap(),
        Rsa256Signer::from_der("CLIENT", 1, &der(&key), &der(&public)).unwrap(),
        Rsa256Signer::from_pem("CLIENT", 1, &bare(&key), &bare(&public)).unwrap(),
    ];
    let signed: Vec<_> = signers.iter().map(seed_request_signed_by).collect();
    for request in &signed {
        assert_eq!(
            request.headers()["Signature"],
            signed[0].headers()["Signature"]
        );
        // The request's own signature verifies with the public key (here: the same pair).
        for signer in &signers {
            signer.verify_request(request).unwrap();
        }
    }
}

/// A server public key shorter than 2048 bits (in either encoding) is refused when the
/// signer is built, as a private key of that size is: every answer signed with it would fail
/// verification after the refresh token was spent, the new pair never read.
#[test]
fn a_server_public_key_too_small_to_verify_is_refused_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, _)) = openssl_keys(dir.path()) else {
        return;
    };
    let small = openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "small.pem",
        ],
    )
    .unwrap();
    assert!(small.status.success());
    for (out, format) in [("spki.pem", None), ("pkcs1.pem", Some("-RSAPublicKey_out"))] {
        let mut args = vec!["rsa", "-in", "small.pem", "-pubout", "-out", out];
        args.extend(format);
        assert!(openssl(dir.path(), &args).unwrap().status.success());
        let public = std::fs::read_to_string(dir.path().join(out)).unwrap();
        let error = Rsa256Signer::from_pem("CLIENT", 1, &key, &public).unwrap_err();
        assert!(error.to_string().contains("public key"), "{out}: {error}");
        let config = AlipayPlusConfig::new("CLIENT", "PSP", &key, &public);
        let error = token_provider_alipayplus::AlipayPlus::new(config).unwrap_err();
        assert!(
            matches!(error, token_core::error::Error::Config(_)),
            "{out}: {error:?}"
        );
    }
}

/// Neither a signer's `Debug` nor a key error shows any part of a private key.
#[test]
fn private_keys_never_show_in_debug_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, public)) = openssl_keys(dir.path()) else {
        return;
    };
    let body_lines: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let signer = Rsa256Signer::from_pem("CLIENT", 1, &key, &public).unwrap();
    let mut shown = vec![format!("{signer:?}")];
    // Broken keys: a truncated body, a body with a stray character, a key given as the
    // public one, a PEM block whose BEGIN line is broken.
    let truncated = key.replace(body_lines[3], "");
    let stray = key.replace(body_lines[3], &format!("{}!", &body_lines[3][1..]));
    let broken_begin = key.replace("-----BEGIN PRIVATE KEY-----\n", "-----BEGIN ");
    for (private, peer) in [
        (truncated.as_str(), public.as_str()),
        (stray.as_str(), public.as_str()),
        (broken_begin.as_str(), public.as_str()),
        (public.as_str(), public.as_str()),
        (key.as_str(), key.as_str()),
    ] {
        let error = Rsa256Signer::from_pem("CLIENT", 1, private, peer).unwrap_err();
        shown.push(format!("{error} / {error:?}"));
        let config = AlipayPlusConfig::new("CLIENT", "PSP", private, peer);
        let error = token_provider_alipayplus::AlipayPlus::new(config).unwrap_err();
        shown.push(format!("{error} / {error:?}"));
    }
    for text in &shown {
        for line in &body_lines {
            for piece in line.as_bytes().chunks(16) {
                let piece = std::str::from_utf8(piece).unwrap();
                assert!(!text.contains(piece), "key material in {text}");
            }
        }
    }
    assert!(shown[0].contains("CLIENT"), "{}", shown[0]);
}

/// The `Signature` header as another stack may write it: its parameters' names in another
/// case or with spaces around `=` (RFC 9110 section 11.2: auth-param names are matched
/// case-insensitively, and `=` may have whitespace around it), the algorithm in lowercase,
/// no spaces at all. Each is read. A parameter named twice is refused, whichever copy is
/// valid, like a header sent twice (another reader may take the other copy); so are a
/// missing or other algorithm and a missing signature.
#[cfg(feature = "sandbox")]
#[test]
fn a_signature_header_in_another_spacing_or_case_is_read_and_a_repeated_parameter_refused() {
    use token_provider_alipayplus::sandbox::{client_private_key, client_public_key};
    let signer =
        Rsa256Signer::from_pem("CLIENT", 1, client_private_key(), client_public_key()).unwrap();
    let signed = seed_request_signed_by(&signer);
    let header = signed.headers()["Signature"].to_str().unwrap().to_owned();
    let value = header.split("signature=").nth(1).unwrap().to_owned();
    let with = |signature: String| {
        let mut request = signed.clone();
        request
            .headers_mut()
            .insert("Signature", http::HeaderValue::try_from(signature).unwrap());
        request
    };
    for accepted in [
        format!("algorithm=RSA256,keyVersion=1,signature={value}"),
        format!("algorithm = RSA256 , keyVersion = 1 , signature = {value}"),
        format!("\talgorithm=RSA256,\tsignature={value}\t"),
        format!("Algorithm=RSA256, KeyVersion=1, Signature={value}"),
        format!("ALGORITHM=rsa256, SIGNATURE={value}"),
    ] {
        let outcome = signer.verify_request(&with(accepted.clone()));
        assert!(outcome.is_ok(), "{accepted}: {outcome:?}");
    }
    for refused in [
        format!("algorithm=RSA256, signature=AAAA, signature={value}"),
        format!("algorithm=RSA256, signature={value}, Signature=AAAA"),
        format!("algorithm=RSA512, algorithm=RSA256, signature={value}"),
        format!("algorithm=RSA512, signature={value}"),
        format!("keyVersion=1, signature={value}"),
        "algorithm=RSA256, keyVersion=1".to_owned(),
    ] {
        let outcome = signer.verify_request(&with(refused.clone()));
        assert!(outcome.is_err(), "{refused}: read as signed");
    }
}

/// A URL in the config that cannot be read is not repeated in the error: its user
/// information may hold a password, its query a key. serde's (url's) message quoted it whole.
#[test]
fn a_config_url_that_cannot_be_read_is_not_quoted_in_the_error() {
    token_test_support::assert_unreadable_config_urls_unquoted::<AlipayPlusConfig>(
        &json!({
            "client_id": "c", "psp_id": "p", "private_key": "k", "server_public_key": "p"
        }),
        &["base_url", "authorize_url"],
    );
}

/// The base and authorize URLs' passwords and queries (credentials an integrator may put
/// there) are not shown by the config's `Debug` (nor so by the provider's, which shows it).
#[test]
fn the_config_s_debug_shows_no_credential_of_its_urls() {
    use token_test_support::url_credentials::{
        assert_shows_no_url_credential, url_with_credentials,
    };
    let config = config()
        .with_base_url(url_with_credentials())
        .with_authorize_url(url_with_credentials());
    let shown = format!("{config:?}");
    assert_shows_no_url_credential(&shown);
    assert_eq!(shown.matches("host.example/token").count(), 2, "{shown}");
}
