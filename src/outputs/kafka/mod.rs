//! The Kafka output (`to = "kafka://HOST:PORT[,HOST:PORT…]/TOPIC"`, or `kafka+tls://` with the
//! output's `tls-*` keys through the rustls client of `tls://`): each message a record in the
//! topic, its value the message in `format` (`json`, the default, with every field the message
//! carries, or `rfc5424`), its key the hostname with `kafka-key = "hostname"`, its timestamp the
//! event's own time.
//!
//! A small synchronous producer on the protocol crate `kafka-protocol` (which encodes the
//! requests and record batches; the answers are read by [`answers`], bounded against a hostile
//! broker), on the output's own thread: it bootstraps from any listed broker (ApiVersions, Metadata), follows the partition
//! leaders (metadata again after any error that says they moved), and produces with `acks =
//! all` as an idempotent producer (InitProducerId: a producer ID and epoch, and a sequence
//! number per partition). A message leaves the backlog only once the partition's leader
//! acknowledged its batch with every in-sync replica; nothing expires: an outage of any length
//! fills the queue, whose policy decides (`queue-dir` puts it on disk).
//!
//! Batches are formed once and kept as formed until acknowledged: a retry after a broken
//! connection, a timeout or a leader change sends the same records with the same sequence
//! numbers, which the broker recognises (`DUPLICATE_SEQUENCE_NUMBER` counts as taken), so
//! retries within a producer session never duplicate. One batch per partition is in flight at
//! a time, so order within a partition is kept. A new producer session (logger restarted, or
//! the broker forgot the producer: `UNKNOWN_PRODUCER_ID`, `OUT_OF_ORDER_SEQUENCE_NUMBER`)
//! renumbers what is not yet acknowledged: what the broker had written of it without our
//! hearing so comes twice, at most one batch a partition ([`BATCH_BYTES`]). Acknowledgements of
//! different partitions may come in any order; the backlog releases messages in the order it
//! took them, so the receipts (and a disk queue's deletions) follow that order.
//!
//! A record the broker refuses for itself (too large, invalid) is found alone, as the
//! journal-remote output finds a bad entry, left out and counted; the rest goes on.

pub mod answers;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, InitProducerIdRequest, MetadataRequest, ProduceRequest,
    RequestHeader, TopicName, metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::connect::{Conn, TlsClient};
use super::formats::{export, json, rfc5424};
use super::{Output, WriteOut};
use crate::config::{Kafka, LineFormat, OutputSpec};
use crate::timestamp::Zone;
use answers::Versions;
use syslog::message::Message;

/// What one partition's batch carries at most.
pub const BATCH_BYTES: usize = 1 << 20;
/// The largest response taken (a metadata answer of a large cluster fits).
pub const MAX_RESPONSE: usize = 16 << 20;
/// How long a connect, a write or an answer may take; the broker waits up to
/// [`PRODUCE_TIMEOUT_MS`] for the in-sync replicas.
const TIMEOUT: Duration = Duration::from_secs(45);
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
const CLIENT_ID: &str = "logger";

/// Kafka's error codes this producer acts on.
mod code {
    pub(super) const NONE: i16 = 0;
    pub(super) const CORRUPT_MESSAGE: i16 = 2;
    pub(super) const MESSAGE_TOO_LARGE: i16 = 10;
    pub(super) const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub(super) const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub(super) const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub(super) const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub(super) const UNKNOWN_PRODUCER_ID: i16 = 59;
    pub(super) const INVALID_RECORD: i16 = 87;
}

/// An entry of the backlog: the record as the item holds it, and whether it was taken.
struct Entry {
    item: Vec<u8>,
    taken: bool,
}

/// A batch formed for one partition: which entries (by number), its first sequence number.
#[derive(Debug, Clone)]
struct Batch {
    partition: i32,
    base_sequence: i32,
    entries: Vec<u64>,
    /// How often it was sent in this producer session.
    sends: u32,
}

/// The brokers by node ID: host and port, as the metadata advertises them.
type Brokers = HashMap<i32, (String, u16)>;

/// What the cluster's metadata says, and the connections to its brokers.
#[derive(Default)]
struct Cluster {
    brokers: Brokers,
    /// Each partition's leader, by partition index.
    leaders: Vec<i32>,
    conns: HashMap<i32, Conn>,
    versions: Option<Versions>,
}

/// The output.
pub struct KafkaOutput {
    target: Kafka,
    tls: Option<TlsClient>,
    format: LineFormat,
    key_hostname: bool,
    compression: Compression,
    local_host: String,
    entries: VecDeque<Entry>,
    /// The number of `entries[0]`.
    first: u64,
    bytes: usize,
    /// Batches formed and not yet acknowledged, oldest first.
    batches: VecDeque<Batch>,
    /// Entries (by number from `first`) not yet in a batch start here.
    unbatched: u64,
    /// The next sequence number of each partition, in this producer session.
    sequences: HashMap<i32, i32>,
    producer: Option<(i64, i16)>,
    cluster: Cluster,
    correlation: i32,
    /// Without a key: the partition the next batch goes to.
    sticky: usize,
    /// After a refusal of a batch of several records: one record a batch.
    single: bool,
    /// Why the last write-out stopped, until one succeeds.
    last_error: Option<String>,
}

/// The entry's record: its timestamp (ms), key and value, as the backlog and a disk queue hold
/// it: `i64` timestamp, `u16` key length, key, value.
fn split_item(item: &[u8]) -> (i64, Option<&[u8]>, &[u8]) {
    let ts = i64::from_le_bytes(item[..8].try_into().unwrap_or([0; 8]));
    let klen = usize::from(u16::from_le_bytes([item[8], item[9]]));
    let key = &item[10..10 + klen];
    (ts, (klen > 0).then_some(key), &item[10 + klen..])
}

impl KafkaOutput {
    /// The output `spec` asks for: for kafka+tls its TLS files are read now (a bad one fails
    /// the start or the reload). It connects at its first write-out.
    pub fn open(target: Kafka, spec: &OutputSpec) -> io::Result<KafkaOutput> {
        let tls = match target.tls {
            false => None,
            true => {
                let config =
                    crate::tls::client::load(&spec.forward.tls).map_err(io::Error::other)?;
                let name = spec.forward.tls.name.clone();
                Some((config, name.unwrap_or_default()))
            }
        };
        Ok(KafkaOutput {
            target,
            tls,
            format: spec.format,
            key_hostname: spec.kafka_key_hostname,
            compression: if spec.kafka_snappy {
                Compression::Snappy
            } else {
                Compression::None
            },
            local_host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "localhost".into()),
            entries: VecDeque::new(),
            first: 0,
            bytes: 0,
            batches: VecDeque::new(),
            unbatched: 0,
            sequences: HashMap::new(),
            producer: None,
            cluster: Cluster::default(),
            correlation: 0,
            sticky: 0,
            single: false,
            last_error: None,
        })
    }

    /// A connection to `host:port` (its TLS name the host unless `tls-name` says otherwise).
    fn connect(&self, host: &str, port: u16) -> io::Result<Conn> {
        let tls = self.tls.as_ref().map(|(config, name)| {
            let name = if name.is_empty() { host } else { name };
            (config.clone(), name.to_owned())
        });
        Conn::open(host, port, tls.as_ref(), TIMEOUT)
    }

    /// Sends `request` on `conn` and reads its answer: the response body after its header,
    /// whose correlation ID must be the request's.
    fn call<Q>(
        correlation: &mut i32,
        conn: &mut Conn,
        key: ApiKey,
        version: i16,
        request: &Q,
    ) -> io::Result<Vec<u8>>
    where
        Q: Encodable + HeaderVersion,
    {
        *correlation = correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = *correlation;
        header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(&[0; 4]);
        header
            .encode(&mut buf, Q::header_version(version))
            .map_err(protocol)?;
        request.encode(&mut buf, version).map_err(protocol)?;
        let len = (buf.len() - 4) as u32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        conn.write_all(&buf)?;
        conn.flush()?;
        let closed = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the broker closed the connection before it answered",
            ),
            _ => e,
        };
        let mut len = [0; 4];
        conn.read_exact(&mut len).map_err(closed)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_RESPONSE {
            return Err(io::Error::other(format!(
                "a response of {len} bytes (more than {MAX_RESPONSE})"
            )));
        }
        let mut body = vec![0; len];
        conn.read_exact(&mut body).map_err(closed)?;
        // InitProducerId is the one flexible version asked for (`answers::VERSIONS`).
        let flexible = matches!(key, ApiKey::InitProducerId);
        let (answered, answer) = answers::header(&body, flexible).map_err(malformed)?;
        if answered != *correlation {
            return Err(io::Error::other("a response to another request"));
        }
        Ok(answer.to_vec())
    }

    /// Bootstraps (any listed broker answers) or refreshes the metadata: brokers, versions,
    /// each partition's leader.
    fn refresh(&mut self) -> io::Result<()> {
        let (mut conn, at) = self.connect_any()?;
        let versions = self.negotiate(&mut conn)?;
        let meta = self.topic_metadata(&mut conn, versions.metadata)?;
        let (brokers, leaders) = self.layout(&meta)?;
        // The connection we asked on serves again as the broker it is, if the metadata names
        // it by the address we reached it at.
        let asked = brokers.iter().find(|(_, hp)| **hp == at).map(|(id, _)| *id);
        self.cluster = Cluster {
            brokers,
            leaders,
            conns: HashMap::new(),
            versions: Some(versions),
        };
        if let Some(id) = asked {
            self.cluster.conns.insert(id, conn);
        }
        Ok(())
    }

    /// A connection to a broker we already know, else to the first listed one that answers;
    /// and the address it reached.
    fn connect_any(&self) -> io::Result<(Conn, (String, u16))> {
        let mut last = io::Error::other("no broker listed");
        let known: Vec<(String, u16)> = self.cluster.brokers.values().cloned().collect();
        for (host, port) in known.iter().chain(self.target.brokers.iter()) {
            match self.connect(host, *port) {
                Ok(conn) => return Ok((conn, (host.clone(), *port))),
                Err(e) => last = io::Error::new(e.kind(), format!("{host}:{port}: {e}")),
            }
        }
        Err(last)
    }

    /// Checks that the broker serves the versions this output asks for; an error names what
    /// it lacks.
    fn negotiate(&mut self, conn: &mut Conn) -> io::Result<Versions> {
        let v = answers::VERSIONS;
        let answer = Self::call(
            &mut self.correlation,
            conn,
            ApiKey::ApiVersions,
            v.api_versions,
            &ApiVersionsRequest::default(),
        )?;
        let (error, served) = answers::api_versions(&answer).map_err(malformed)?;
        if error != code::NONE {
            return Err(io::Error::other(format!("ApiVersions: error {error}")));
        }
        for (key, version, name) in [
            (ApiKey::Metadata, v.metadata, "Metadata"),
            (
                ApiKey::InitProducerId,
                v.init_producer_id,
                "InitProducerId (an idempotent producer)",
            ),
            (ApiKey::Produce, v.produce, "Produce"),
        ] {
            if !served
                .iter()
                .any(|a| a.key == key as i16 && (a.min..=a.max).contains(&version))
            {
                return Err(io::Error::other(format!(
                    "the broker does not serve {name} v{version}"
                )));
            }
        }
        Ok(v)
    }

    /// The cluster's metadata for our topic (created by the broker if it allows that).
    fn topic_metadata(&mut self, conn: &mut Conn, version: i16) -> io::Result<answers::Metadata> {
        let mut request = MetadataRequest::default();
        let mut topic = MetadataRequestTopic::default();
        topic.name = Some(TopicName(StrBytes::from_string(self.target.topic.clone())));
        request.topics = Some(vec![topic]);
        request.allow_auto_topic_creation = true;
        let answer = Self::call(
            &mut self.correlation,
            conn,
            ApiKey::Metadata,
            version,
            &request,
        )?;
        answers::metadata(&answer).map_err(malformed)
    }

    /// The brokers and each partition's leader, from the metadata.
    fn layout(&self, (brokers, topics): &answers::Metadata) -> io::Result<(Brokers, Vec<i32>)> {
        let brokers = brokers
            .iter()
            .map(|(id, host, port)| (*id, (host.clone(), u16::try_from(*port).unwrap_or(0))))
            .collect();
        let topic = topics
            .iter()
            .find(|t| t.name == self.target.topic)
            .ok_or_else(|| io::Error::other("the metadata does not name the topic"))?;
        if topic.error != code::NONE || topic.partitions.is_empty() {
            return Err(io::Error::other(format!(
                "topic {}: error {} in the metadata (not created yet, or no leader)",
                self.target.topic, topic.error
            )));
        }
        let mut leaders = vec![-1; topic.partitions.len()];
        for &(index, leader) in &topic.partitions {
            if let Some(slot) = usize::try_from(index).ok().and_then(|i| leaders.get_mut(i)) {
                *slot = leader;
            }
        }
        Ok((brokers, leaders))
    }

    /// A producer ID and epoch from the cluster (a new session: sequences start at 0).
    fn init_producer(&mut self) -> io::Result<()> {
        let v = self.versions()?;
        let leader = self.cluster.leaders.first().copied().unwrap_or(-1);
        let mut request = InitProducerIdRequest::default();
        request.transaction_timeout_ms = -1;
        request.producer_id = (-1).into();
        request.producer_epoch = -1;
        let mut correlation = self.correlation;
        let conn = self.conn(leader)?;
        let answer = Self::call(
            &mut correlation,
            conn,
            ApiKey::InitProducerId,
            v.init_producer_id,
            &request,
        );
        self.correlation = correlation;
        let (error, id, epoch) = answers::init_producer_id(&answer?).map_err(malformed)?;
        if error != code::NONE {
            return Err(io::Error::other(format!("InitProducerId: error {error}")));
        }
        self.producer = Some((id, epoch));
        log::info!(
            "{}: producer session {id} (epoch {epoch}), {} batches to renumber",
            self.describe(),
            self.batches.len()
        );
        // Renumber what is not acknowledged, in order, from 0 in each partition.
        self.sequences.clear();
        for batch in &mut self.batches {
            let next = self.sequences.entry(batch.partition).or_insert(0);
            batch.base_sequence = *next;
            batch.sends = 0;
            *next += batch.entries.len() as i32;
        }
        Ok(())
    }

    fn versions(&self) -> io::Result<Versions> {
        self.cluster
            .versions
            .ok_or_else(|| io::Error::other("no metadata yet"))
    }

    /// The connection to broker `id`, opened if need be.
    fn conn(&mut self, id: i32) -> io::Result<&mut Conn> {
        if !self.cluster.conns.contains_key(&id) {
            let (host, port) = self
                .cluster
                .brokers
                .get(&id)
                .cloned()
                .ok_or_else(|| io::Error::other(format!("no broker {id} in the metadata")))?;
            let conn = self
                .connect(&host, port)
                .map_err(|e| io::Error::new(e.kind(), format!("broker {id} {host}:{port}: {e}")))?;
            self.cluster.conns.insert(id, conn);
        }
        Ok(self.cluster.conns.get_mut(&id).expect("inserted above"))
    }

    /// The entry numbered `n`.
    fn entry(&self, n: u64) -> &Entry {
        &self.entries[(n - self.first) as usize]
    }

    /// Forms batches of the entries not yet in one: by key (Kafka's murmur2 partitioner) or,
    /// without one, a batch at a time to the next partition.
    fn form_batches(&mut self) {
        let partitions = self.cluster.leaders.len();
        if partitions == 0 {
            return;
        }
        let end = self.first + self.entries.len() as u64;
        let mut open: HashMap<i32, (Batch, usize)> = HashMap::new();
        let sticky = (self.sticky % partitions) as i32;
        while self.unbatched < end {
            let item = &self.entry(self.unbatched).item;
            let (_, key, _) = split_item(item);
            let partition = match key {
                Some(key) => (murmur2(key) & 0x7fff_ffff) as i32 % partitions as i32,
                None => sticky,
            };
            let (batch, size) = open.entry(partition).or_insert_with(|| {
                (
                    Batch {
                        partition,
                        base_sequence: 0,
                        entries: Vec::new(),
                        sends: 0,
                    },
                    0,
                )
            });
            let full =
                !batch.entries.is_empty() && (self.single || *size + item.len() > BATCH_BYTES);
            if full {
                break;
            }
            *size += item.len();
            batch.entries.push(self.unbatched);
            self.unbatched += 1;
        }
        let mut formed: Vec<Batch> = open.into_values().map(|(b, _)| b).collect();
        formed.sort_by_key(|b| b.entries[0]);
        for mut batch in formed {
            let next = self.sequences.entry(batch.partition).or_insert(0);
            batch.base_sequence = *next;
            *next = next.wrapping_add(batch.entries.len() as i32);
            self.batches.push_back(batch);
        }
        self.sticky = self.sticky.wrapping_add(1);
    }

    /// The records of `batch`, encoded.
    fn encode_batch(&self, batch: &Batch, (pid, epoch): (i64, i16)) -> io::Result<Bytes> {
        let records: Vec<Record> = batch
            .entries
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let (timestamp, key, value) = split_item(&self.entry(n).item);
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: pid,
                    producer_epoch: epoch,
                    timestamp_type: TimestampType::Creation,
                    offset: i as i64,
                    sequence: batch.base_sequence.wrapping_add(i as i32),
                    timestamp,
                    key: key.map(Bytes::copy_from_slice),
                    value: Some(Bytes::copy_from_slice(value)),
                    headers: Default::default(),
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: self.compression,
            },
        )
        .map_err(protocol)?;
        Ok(buf.freeze())
    }

    /// Sends, per leader, the oldest batch of each of its partitions, and settles what the
    /// answers say. Returns how many entries were rejected.
    fn produce_round(&mut self) -> io::Result<u64> {
        let v = self.versions()?;
        let producer = self
            .producer
            .ok_or_else(|| io::Error::other("no producer ID"))?;
        // The oldest batch of each partition, grouped by leader.
        let mut by_leader: HashMap<i32, Vec<usize>> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (i, b) in self.batches.iter().enumerate() {
            if seen.insert(b.partition) {
                let leader = usize::try_from(b.partition)
                    .ok()
                    .and_then(|p| self.cluster.leaders.get(p))
                    .copied()
                    .unwrap_or(-1);
                by_leader.entry(leader).or_default().push(i);
            }
        }
        let mut settled: Vec<(usize, i16)> = Vec::new();
        for (leader, indexes) in by_leader {
            let mut topic = TopicProduceData::default();
            topic.name = TopicName(StrBytes::from_string(self.target.topic.clone()));
            for &i in &indexes {
                self.batches[i].sends += 1;
                let mut data = PartitionProduceData::default();
                data.index = self.batches[i].partition;
                data.records = Some(self.encode_batch(&self.batches[i], producer)?);
                topic.partition_data.push(data);
            }
            let mut request = ProduceRequest::default();
            request.acks = -1;
            request.timeout_ms = PRODUCE_TIMEOUT_MS;
            request.topic_data = vec![topic];
            let mut correlation = self.correlation;
            let answer = self.conn(leader).and_then(|conn| {
                Self::call(&mut correlation, conn, ApiKey::Produce, v.produce, &request)
            });
            self.correlation = correlation;
            let answer = answer.and_then(|a| answers::produce(&a).map_err(malformed));
            let partitions = match answer {
                Ok(p) => p,
                Err(e) => {
                    self.cluster.conns.remove(&leader);
                    return Err(e);
                }
            };
            for (topic, partition, error) in partitions {
                if topic != self.target.topic {
                    continue;
                }
                if let Some(&i) = indexes
                    .iter()
                    .find(|&&i| self.batches[i].partition == partition)
                {
                    settled.push((i, error));
                }
            }
        }
        self.settle(settled)
    }

    /// Applies the answers: taken batches release their entries; a refused record is left out;
    /// anything else is retried as formed. Returns how many entries were rejected.
    fn settle(&mut self, mut settled: Vec<(usize, i16)>) -> io::Result<u64> {
        let mut rejected = 0;
        let mut error = None;
        // Highest index first, so removals keep the others' indexes.
        settled.sort_by_key(|s| std::cmp::Reverse(s.0));
        for (i, code) in settled {
            let partition = self.batches[i].partition;
            let outcome = match code {
                code::DUPLICATE_SEQUENCE_NUMBER if self.batches[i].sends < 2 => {
                    // A duplicate of a batch this session never sent before: the broker holds
                    // another producer's sequence under our ID (one that handed the same ID
                    // out twice). Taking it as written would lose it: a new session instead.
                    log::warn!(
                        "{}: partition {partition} called a first send a duplicate (a producer \
                         ID handed out twice?); a new producer session starts",
                        self.describe()
                    );
                    self.producer = None;
                    Err(io::Error::other(
                        "a first send answered as a duplicate; a new producer session starts",
                    ))
                }
                code::NONE | code::DUPLICATE_SEQUENCE_NUMBER => {
                    self.taken(i, code == code::DUPLICATE_SEQUENCE_NUMBER);
                    Ok(0)
                }
                code::MESSAGE_TOO_LARGE
                | code::RECORD_LIST_TOO_LARGE
                | code::INVALID_RECORD
                | code::CORRUPT_MESSAGE => Ok(self.refused(i, code)),
                code::UNKNOWN_PRODUCER_ID
                | code::OUT_OF_ORDER_SEQUENCE_NUMBER
                | code::INVALID_PRODUCER_EPOCH => {
                    // The broker lost or fenced our session: a new one renumbers.
                    self.producer = None;
                    Err(io::Error::other(format!(
                        "the broker ended the producer session (error {code}); a new one starts"
                    )))
                }
                other => {
                    // Leadership moved, replicas short, a timeout: metadata again, then the
                    // same batch.
                    self.cluster.versions = None;
                    Err(io::Error::other(format!(
                        "partition {partition} answered error {other}"
                    )))
                }
            };
            match outcome {
                Ok(n) => rejected += n,
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        error.map_or(Ok(rejected), Err)
    }

    /// The batch at `i` was acknowledged (`resent`: as a duplicate of an earlier send whose
    /// answer was lost): its entries are taken.
    fn taken(&mut self, i: usize, resent: bool) {
        let batch = self.batches.remove(i).expect("a batch sent");
        if resent {
            log::info!(
                "{}: partition {} already had the {} records sent again after a lost answer: \
                 taken once",
                self.describe(),
                batch.partition,
                batch.entries.len()
            );
        }
        for n in batch.entries {
            let idx = (n - self.first) as usize;
            self.entries[idx].taken = true;
        }
    }

    /// The broker refused the batch at `i` for what it holds: a batch of several is split into
    /// batches of one (same sequence numbers) to find the record; a record alone is left out.
    /// Returns how many entries were rejected.
    fn refused(&mut self, i: usize, code: i16) -> u64 {
        let batch = self.batches.remove(i).expect("a batch sent");
        if batch.entries.len() > 1 {
            self.single = true;
            for (k, n) in batch.entries.iter().enumerate().rev() {
                self.batches.insert(
                    i,
                    Batch {
                        partition: batch.partition,
                        base_sequence: batch.base_sequence.wrapping_add(k as i32),
                        entries: vec![*n],
                        sends: 0,
                    },
                );
            }
            return 0;
        }
        let idx = (batch.entries[0] - self.first) as usize;
        log::error!(
            "{}: the broker refused a record of {} bytes (error {code}); it is left out and the \
             rest is sent",
            self.describe(),
            self.entries[idx].item.len()
        );
        self.entries[idx].taken = true;
        // Its sequence number was never used: the later batches of its partition move down by
        // one.
        for later in self.batches.iter_mut().skip(i) {
            if later.partition == batch.partition {
                later.base_sequence = later.base_sequence.wrapping_sub(1);
            }
        }
        if let Some(next) = self.sequences.get_mut(&batch.partition) {
            *next = next.wrapping_sub(1);
        }
        self.single = false;
        1
    }

    /// Releases the entries taken at the front of the backlog, in order; how many.
    fn release(&mut self) -> u64 {
        let mut released = 0;
        while self.entries.front().is_some_and(|e| e.taken) {
            let e = self.entries.pop_front().expect("checked");
            self.bytes -= e.item.len();
            self.first += 1;
            released += 1;
        }
        released
    }

    fn encode_record(&self, msg: &Message, item: &mut Vec<u8>) {
        let start = item.len();
        let usec = export::event_usec(msg);
        item.extend_from_slice(&((usec / 1000) as i64).to_le_bytes());
        item.extend_from_slice(&[0, 0]);
        if self.key_hostname {
            let host = msg.hostname();
            let host = host.as_deref().unwrap_or(&self.local_host);
            let key = &host.as_bytes()[..host.len().min(usize::from(u16::MAX))];
            item[start + 8..start + 10].copy_from_slice(&(key.len() as u16).to_le_bytes());
            item.extend_from_slice(key);
        }
        match self.format {
            LineFormat::Rfc5424 => rfc5424::format(item, msg, &self.local_host, Zone::Utc),
            _ => json::format(item, msg, &self.local_host, Zone::Utc),
        }
        if item.last() == Some(&b'\n') {
            item.pop();
        }
    }
}

impl Output for KafkaOutput {
    fn describe(&self) -> String {
        self.target.to_string()
    }

    fn accept(&mut self, msg: &Message) {
        let mut item = Vec::with_capacity(256 + msg.text().len());
        self.encode_record(msg, &mut item);
        self.accept_item(&item);
    }

    fn encode_item(&self, msg: &Message, item: &mut Vec<u8>) {
        self.encode_record(msg, item);
    }

    fn accept_item(&mut self, item: &[u8]) {
        if item.len() < 10 {
            return;
        }
        self.bytes += item.len();
        self.entries.push_back(Entry {
            item: item.to_vec(),
            taken: false,
        });
    }

    fn backlog_bytes(&self) -> usize {
        self.bytes
    }

    fn backlog_messages(&self) -> usize {
        self.entries.len()
    }

    fn write_out(&mut self) -> WriteOut {
        let mut out = WriteOut::default();
        while !self.entries.is_empty() {
            let step = (|| {
                if self.cluster.versions.is_none() {
                    self.refresh()?;
                }
                if self.producer.is_none() {
                    self.init_producer()?;
                }
                self.form_batches();
                self.produce_round()
            })();
            match step {
                Ok(rejected) => {
                    out.rejected += rejected;
                    self.last_error = None;
                }
                Err(e) => {
                    self.last_error = Some(e.to_string());
                    out.error = Some(e);
                    break;
                }
            }
            out.written += self.release();
        }
        out.written += self.release();
        // A rejected entry was counted as rejected, not written.
        out.written -= out.rejected.min(out.written);
        out
    }

    fn link_state(&self) -> Option<super::forward::LinkState> {
        let remote = self.cluster.versions.map(|_| {
            let producer = self
                .producer
                .map_or("no producer ID".to_owned(), |(id, epoch)| {
                    format!("producer {id} epoch {epoch}")
                });
            format!(
                "{} brokers, {} partitions, {} batches unacknowledged, {producer}",
                self.cluster.brokers.len(),
                self.cluster.leaders.len(),
                self.batches.len()
            )
        });
        Some(super::forward::LinkState {
            remote: if self.last_error.is_some() {
                None
            } else {
                remote
            },
            error: self.last_error.clone(),
        })
    }

    fn finish(&mut self) {
        self.cluster.conns.clear();
    }
}

/// Kafka's default partitioner's hash (the Java client's `Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

fn malformed(e: answers::Malformed) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a broker's answer that is not Kafka's: {}", e.0),
    )
}

fn protocol(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("Kafka protocol: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_the_java_clients() {
        // Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
    }
}
