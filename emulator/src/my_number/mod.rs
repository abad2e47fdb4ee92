//! The My Number card platform's data codecs: the text-support AP's files, the individual number and the card-verifiable certificate.

pub mod cv_cert;
pub mod individual_number;
pub mod text_ap;
