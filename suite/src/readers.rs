//! Virtual readers named on the command line: `--vpcd HOST[:PORT[-LAST]]` (a vpcd that
//! listens, possibly on another machine) and `--listen ADDR:PORT[-LAST]` (a vpcd in
//! reversed mode that connects to rclab). Shared by `rclab serve` and `rclab run`.

use std::collections::HashMap;

use rclab_emulator::transport::vpcd::Endpoint;

/// The readers of one `--vpcd` or `--listen` value, in port order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointList(pub Vec<Endpoint>);

/// clap parser of a `--vpcd` value.
pub fn parse_vpcd(text: &str) -> Result<EndpointList, String> {
    Endpoint::parse_vpcd(text)
        .map(EndpointList)
        .map_err(|e| e.to_string())
}

/// clap parser of a `--listen` value.
pub fn parse_listen(text: &str) -> Result<EndpointList, String> {
    Endpoint::parse_listen(text)
        .map(EndpointList)
        .map_err(|e| e.to_string())
}

/// Every reader of the `--vpcd` values, then of the `--listen` values; an error names the
/// flag and the port when one port is named twice (two readers on one port would
/// deadlock on its lock, and `insert PORT`/`remove PORT` could not tell them apart).
pub fn collect(vpcd: &[EndpointList], listen: &[EndpointList]) -> Result<Vec<Endpoint>, String> {
    let mut seen: HashMap<u16, (&'static str, &Endpoint)> = HashMap::new();
    let mut all = Vec::new();
    let flagged = vpcd
        .iter()
        .flat_map(|l| l.0.iter().map(|e| ("--vpcd", e)))
        .chain(
            listen
                .iter()
                .flat_map(|l| l.0.iter().map(|e| ("--listen", e))),
        );
    for (flag, endpoint) in flagged {
        if let Some((first_flag, first)) = seen.get(&endpoint.port()) {
            return Err(format!(
                "{flag}: port {} is given twice ({first_flag} {first} and {flag} {endpoint}); \
                 each reader needs its own port",
                endpoint.port()
            ));
        }
        seen.insert(endpoint.port(), (flag, endpoint));
        all.push(endpoint.clone());
    }
    Ok(all)
}

/// `--reader-port` values: an error names the first port given twice.
pub fn check_distinct_ports(ports: &[u16]) -> Result<(), String> {
    for (i, port) in ports.iter().enumerate() {
        if ports[..i].contains(port) {
            return Err(format!(
                "--reader-port {port} is given twice; each profile needs its own reader port"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_named_twice_is_refused_with_the_flag_and_port() {
        let a = parse_vpcd("127.0.0.2:35963-35964").unwrap();
        let b = parse_listen("127.0.0.2:35964").unwrap();
        let error = collect(std::slice::from_ref(&a), &[b]).unwrap_err();
        assert!(
            error.contains("--listen") && error.contains("35964"),
            "{error}"
        );
        assert_eq!(collect(&[a], &[]).unwrap().len(), 2);
        let error = check_distinct_ports(&[35963, 35964, 35963]).unwrap_err();
        assert!(
            error.contains("--reader-port 35963 is given twice"),
            "{error}"
        );
        assert!(check_distinct_ports(&[35963, 35964]).is_ok());
    }
}
