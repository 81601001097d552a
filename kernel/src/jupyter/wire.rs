//! The Jupyter wire protocol (messaging spec 5.3): signed multipart messages over ZeroMQ.
//!
//! Written from the messaging spec ("The Wire Protocol": routing identities, `<IDS|MSG>`, the HMAC-SHA256
//! signature over header, parent header, metadata and content), on the ZeroMQ, HMAC and SHA-2 crates
//! evcxr_jupyter 0.22 already pulls in (its own wire modules are private, so they cannot be reused).

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use zeromq::{SocketRecv, SocketSend, ZmqMessage};

type HmacSha256 = Hmac<Sha256>;

const DELIMITER: &[u8] = b"<IDS|MSG>";

/// The signing key of a connection (`None`: the connection file's key is empty, no signatures).
#[derive(Clone)]
pub struct Signer(Option<HmacSha256>);

impl Signer {
    /// A signer for the connection file's `key`.
    pub fn new(key: &str) -> Signer {
        if key.is_empty() {
            Signer(None)
        } else {
            Signer(Some(HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length")))
        }
    }

    fn sign(&self, parts: &[Bytes]) -> String {
        match &self.0 {
            None => String::new(),
            Some(m) => {
                let mut m = m.clone();
                parts.iter().for_each(|p| m.update(p));
                hex::encode(m.finalize().into_bytes().as_slice())
            }
        }
    }

    fn verify(&self, parts: &[Bytes], sig: &[u8]) -> Result<()> {
        if let Some(m) = &self.0 {
            let mut m = m.clone();
            parts.iter().for_each(|p| m.update(p));
            m.verify_slice(&hex::decode(sig)?).map_err(|e| anyhow!("bad message signature: {e}"))?;
        }
        Ok(())
    }
}

/// One Jupyter message: routing identities (shell/control/stdin), header, parent header, metadata
/// and content.
#[derive(Clone, Debug)]
pub struct Message {
    identities: Vec<Bytes>,
    /// The header (`msg_id`, `msg_type`, `session`, ...).
    pub header: Value,
    /// The header of the request this message answers (`{}` when none).
    pub parent_header: Value,
    /// Metadata (mostly `{}`).
    pub metadata: Value,
    /// The content, per message type.
    pub content: Value,
}

impl Message {
    /// Reads and checks one message from a socket.
    pub async fn read<S: SocketRecv>(socket: &mut S, signer: &Signer) -> Result<Message> {
        let multipart = socket.recv().await?;
        Self::from_multipart(multipart, signer)
    }

    fn from_multipart(multipart: ZmqMessage, signer: &Signer) -> Result<Message> {
        let parts = multipart.into_vec();
        let d = parts.iter().position(|p| &p[..] == DELIMITER).ok_or_else(|| anyhow!("no <IDS|MSG> delimiter"))?;
        if parts.len() < d + 6 {
            bail!("message with {} parts after the delimiter", parts.len() - d - 1);
        }
        let jparts = &parts[d + 2..];
        signer.verify(jparts, &parts[d + 1])?;
        let j = |i: usize| -> Result<Value> { Ok(serde_json::from_slice(&jparts[i])?) };
        Ok(Message {
            identities: parts[..d].to_vec(),
            header: j(0)?,
            parent_header: j(1)?,
            metadata: j(2)?,
            content: j(3)?,
        })
    }

    /// Signs and sends the message.
    pub async fn send<S: SocketSend>(&self, socket: &mut S, signer: &Signer) -> Result<()> {
        let jparts: Vec<Bytes> = [&self.header, &self.parent_header, &self.metadata, &self.content]
            .iter()
            .map(|v| serde_json::to_vec(v).map(Bytes::from))
            .collect::<Result<_, _>>()?;
        let mut parts = self.identities.clone();
        parts.push(Bytes::from_static(DELIMITER));
        parts.push(Bytes::from(signer.sign(&jparts)));
        parts.extend(jparts);
        socket.send(ZmqMessage::try_from(parts).map_err(|_| anyhow!("empty message"))?).await?;
        Ok(())
    }

    /// The message type (`execute_request`, ...).
    pub fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or("")
    }

    /// A new message caused by this one (its parent); identities are not kept.
    pub fn child(&self, msg_type: &str, content: Value) -> Message {
        let mut header = self.header.clone();
        if !header.is_object() {
            header = json!({});
        }
        header["msg_type"] = json!(msg_type);
        header["username"] = json!("kernel");
        header["msg_id"] = json!(uuid::Uuid::new_v4().to_string());
        header["date"] = json!(crate::runner::iso_time(std::time::SystemTime::now()));
        header["version"] = json!("5.3");
        Message { identities: Vec::new(), header, parent_header: self.header.clone(), metadata: json!({}), content }
    }

    /// The reply to this request (`*_request` -> `*_reply`), routed back to its sender.
    pub fn reply(&self, content: Value) -> Message {
        let mut m = self.child(&self.msg_type().replace("_request", "_reply"), content);
        m.identities = self.identities.clone();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_round_trip_and_tamper_detection() {
        let signer = Signer::new("secret");
        let req = Message {
            identities: vec![Bytes::from_static(b"id1")],
            header: json!({"msg_id": "a", "msg_type": "execute_request", "session": "s"}),
            parent_header: json!({}),
            metadata: json!({}),
            content: json!({"code": "1+1"}),
        };
        let reply = req.reply(json!({"status": "ok"}));
        assert_eq!(reply.msg_type(), "execute_reply");
        assert_eq!(reply.parent_header["msg_id"], "a");
        let jparts: Vec<Bytes> = [&reply.header, &reply.parent_header, &reply.metadata, &reply.content]
            .iter()
            .map(|v| Bytes::from(serde_json::to_vec(v).unwrap()))
            .collect();
        let sig = signer.sign(&jparts);
        let mut parts = vec![Bytes::from_static(b"id1"), Bytes::from_static(DELIMITER), Bytes::from(sig.clone())];
        parts.extend(jparts.clone());
        let back = Message::from_multipart(ZmqMessage::try_from(parts).unwrap(), &signer).unwrap();
        assert_eq!(back.content["status"], "ok");
        assert_eq!(back.identities, vec![Bytes::from_static(b"id1")]);
        let mut bad = vec![Bytes::from_static(DELIMITER), Bytes::from(sig)];
        let mut tampered = jparts;
        tampered[3] = Bytes::from_static(b"{\"status\":\"error\"}");
        bad.extend(tampered);
        assert!(Message::from_multipart(ZmqMessage::try_from(bad).unwrap(), &signer).is_err());
    }
}
