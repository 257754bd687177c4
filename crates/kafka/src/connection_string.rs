//! Azure Event Hubs and Microsoft Fabric Event Streams connection strings, which stand in for
//! the Kafka settings: `Endpoint=sb://NAME.servicebus.windows.net/;SharedAccessKeyName=…;
//! SharedAccessKey=…;EntityPath=TOPIC`. Their Kafka endpoint is the same host on port 9093,
//! spoken over SASL_SSL with mechanism PLAIN, user `$ConnectionString` and the whole string as
//! the password.

/// Kafka settings taken from a connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct EventHubsConnection {
    /// `host:9093`.
    pub bootstrap_servers: String,
    /// The `EntityPath` (the event hub, i.e. the topic), if the string names one.
    pub topic: Option<String>,
    /// Always `$ConnectionString`.
    pub sasl_username: String,
    /// The connection string itself.
    pub sasl_password: String,
}

// The password is a secret: never print it.
impl std::fmt::Debug for EventHubsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHubsConnection")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topic", &self.topic)
            .field("sasl_username", &self.sasl_username)
            .finish_non_exhaustive()
    }
}

impl EventHubsConnection {
    /// The librdkafka settings for this connection.
    pub fn client_config(&self) -> Vec<(String, String)> {
        vec![
            ("bootstrap.servers".into(), self.bootstrap_servers.clone()),
            ("security.protocol".into(), "SASL_SSL".into()),
            ("sasl.mechanism".into(), "PLAIN".into()),
            ("sasl.username".into(), self.sasl_username.clone()),
            ("sasl.password".into(), self.sasl_password.clone()),
        ]
    }
}

/// Why a connection string was refused (the message never includes the key).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Event Hubs connection string: {0}")]
pub struct ConnectionStringError(pub &'static str);

/// Parses an Event Hubs / Fabric connection string. Keys are case-insensitive, values may be
/// quoted, and the endpoint may be `sb://host/`, `host` or `host:port` (the port is always
/// 9093, the Kafka endpoint).
pub fn parse(s: &str) -> Result<EventHubsConnection, ConnectionStringError> {
    let s = s.trim();
    let mut endpoint = None;
    let mut topic = None;
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(ConnectionStringError("a part is not key=value"));
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "endpoint" => endpoint = Some(v),
            "entitypath" if !v.is_empty() => topic = Some(v.to_owned()),
            _ => {}
        }
    }
    let endpoint = endpoint.ok_or(ConnectionStringError("no Endpoint"))?;
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(ConnectionStringError("the Endpoint has no valid host"));
    }
    Ok(EventHubsConnection {
        bootstrap_servers: format!("{host}:9093"),
        topic,
        sasl_username: "$ConnectionString".into(),
        sasl_password: s.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_hubs_and_fabric_strings() {
        let cs = "Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc/def+g==;EntityPath=bluesky";
        let c = parse(cs).expect("parses");
        assert_eq!(c.bootstrap_servers, "myns.servicebus.windows.net:9093");
        assert_eq!(c.topic.as_deref(), Some("bluesky"));
        assert_eq!(c.sasl_username, "$ConnectionString");
        assert_eq!(c.sasl_password, cs);
        let cfg = c.client_config();
        assert!(cfg.contains(&("security.protocol".into(), "SASL_SSL".into())));
        assert!(cfg.contains(&("sasl.mechanism".into(), "PLAIN".into())));
        assert!(!format!("{c:?}").contains("abc/def"), "Debug hides the key");

        // Fabric custom endpoints: same shape, other host; quoted values, odd case, spaces.
        let fabric = " endpoint=\"sb://eventstream-x.servicebus.windows.net/\" ; EntityPath=es_abc ; SharedAccessKey=k ";
        let c = parse(fabric).expect("parses");
        assert_eq!(
            c.bootstrap_servers,
            "eventstream-x.servicebus.windows.net:9093"
        );
        assert_eq!(c.topic.as_deref(), Some("es_abc"));

        let no_topic = parse("Endpoint=sb://h.example:5671/;SharedAccessKey=k").expect("ok");
        assert_eq!(no_topic.bootstrap_servers, "h.example:9093");
        assert_eq!(no_topic.topic, None);
    }

    #[test]
    fn refuses_strings_without_an_endpoint() {
        for bad in [
            "",
            "SharedAccessKey=k;EntityPath=t",
            "Endpoint=sb:///;EntityPath=t",
            "Endpoint=sb://bad host/",
            "garbage",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
