//! The four answers the Kafka output reads (ApiVersions, Metadata, InitProducerId, Produce),
//! decoded by hand at the versions it asks for ([`VERSIONS`]), with a bound a broker cannot
//! talk past: every array's length is checked against the bytes the answer still holds before
//! anything is reserved for it, so an answer costs at most what it weighs.
//!
//! Why by hand: `kafka-protocol` 0.18 (which still encodes our requests and record batches)
//! reserves an array's capacity from the length on the wire, so one answer of a few bytes made
//! it allocate 4 GiB and abort (the `kafka` fuzz target's first finding). A broker is a peer on
//! the network: a broken or hostile one must not take the host's logging down. Pure.

/// The versions asked for, which every broker since Kafka 2.4 serves and Kafka 4 still does:
/// non-flexible ones (no tagged fields) but for InitProducerId, whose v4 (flexible, as v2 and
/// up are) is what brokers that fence producer epochs answer best.
pub const VERSIONS: Versions = Versions {
    api_versions: 0,
    metadata: 5,
    init_producer_id: 4,
    produce: 7,
};

/// The version of each request this output sends.
#[derive(Debug, Clone, Copy)]
pub struct Versions {
    /// ApiVersions.
    pub api_versions: i16,
    /// Metadata.
    pub metadata: i16,
    /// InitProducerId.
    pub init_producer_id: i16,
    /// Produce.
    pub produce: i16,
}

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// A cursor over an answer's bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed("the answer ends early"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, Malformed> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("two bytes"),
        ))
    }

    fn i32(&mut self) -> Result<i32, Malformed> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("four bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("eight bytes"),
        ))
    }

    /// An unsigned varint (LEB128), at most five bytes.
    fn uvarint(&mut self) -> Result<u32, Malformed> {
        let mut value = 0u32;
        for i in 0..5 {
            let b = self.take(1)?[0];
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed("a varint longer than five bytes"))
    }

    /// A flexible version's tagged fields, skipped.
    fn skip_tags(&mut self) -> Result<(), Malformed> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }

    fn bool(&mut self) -> Result<bool, Malformed> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A string (i16 length); a null one (-1) is None.
    fn nullable_string(&mut self) -> Result<Option<String>, Malformed> {
        match self.i16()? {
            -1 => Ok(None),
            n if n >= 0 => Ok(Some(
                String::from_utf8_lossy(self.take(n as usize)?).into_owned(),
            )),
            _ => Err(Malformed("a negative string length")),
        }
    }

    fn string(&mut self) -> Result<String, Malformed> {
        self.nullable_string()?
            .ok_or(Malformed("a null where a string belongs"))
    }

    /// An array (i32 length) of elements of at least `min` bytes each, each read by `element`;
    /// a length the answer cannot hold is refused before anything is reserved.
    fn array<T>(
        &mut self,
        min: usize,
        mut element: impl FnMut(&mut Self) -> Result<T, Malformed>,
    ) -> Result<Vec<T>, Malformed> {
        let n = match self.i32()? {
            -1 => return Ok(Vec::new()),
            n if n >= 0 => n as usize,
            _ => return Err(Malformed("a negative array length")),
        };
        if n.saturating_mul(min.max(1)) > self.buf.len() {
            return Err(Malformed("an array longer than the answer"));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(element(self)?);
        }
        Ok(out)
    }
}

/// Splits a response body into the correlation ID of its header and the answer: header v0,
/// or v1 (with tagged fields) for a `flexible` answer.
pub fn header(body: &[u8], flexible: bool) -> Result<(i32, &[u8]), Malformed> {
    let mut r = Reader { buf: body };
    let correlation = r.i32()?;
    if flexible {
        r.skip_tags()?;
    }
    Ok((correlation, r.buf))
}

/// One API's versions, as the broker serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    /// The API key.
    pub key: i16,
    /// The oldest version served.
    pub min: i16,
    /// The newest.
    pub max: i16,
}

/// ApiVersions v0: the error code and the APIs served.
pub fn api_versions(answer: &[u8]) -> Result<(i16, Vec<ApiRange>), Malformed> {
    let mut r = Reader { buf: answer };
    let error = r.i16()?;
    let apis = r.array(6, |r| {
        Ok(ApiRange {
            key: r.i16()?,
            min: r.i16()?,
            max: r.i16()?,
        })
    })?;
    Ok((error, apis))
}

/// One topic of a Metadata answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    /// Its error code.
    pub error: i16,
    /// Its name.
    pub name: String,
    /// Each partition: its index and leader.
    pub partitions: Vec<(i32, i32)>,
}

/// Metadata v5: the brokers (node ID, host, port) and the topics.
pub type Metadata = (Vec<(i32, String, i32)>, Vec<TopicLayout>);

/// Metadata v5.
pub fn metadata(answer: &[u8]) -> Result<Metadata, Malformed> {
    let mut r = Reader { buf: answer };
    let _throttle = r.i32()?;
    let brokers = r.array(12, |r| {
        let id = r.i32()?;
        let host = r.string()?;
        let port = r.i32()?;
        let _rack = r.nullable_string()?;
        Ok((id, host, port))
    })?;
    let _cluster = r.nullable_string()?;
    let _controller = r.i32()?;
    // Each element's least size: what its fixed fields and empty strings and arrays take.
    let topics = r.array(9, |r| {
        let error = r.i16()?;
        let name = r.string()?;
        let _internal = r.bool()?;
        let partitions = r.array(22, |r| {
            let _error = r.i16()?;
            let index = r.i32()?;
            let leader = r.i32()?;
            for _ in 0..3 {
                // Replicas, in-sync replicas, offline replicas.
                r.array(4, |r| r.i32())?;
            }
            Ok((index, leader))
        })?;
        Ok(TopicLayout {
            error,
            name,
            partitions,
        })
    })?;
    Ok((brokers, topics))
}

/// InitProducerId v4: the error code, producer ID and epoch.
pub fn init_producer_id(answer: &[u8]) -> Result<(i16, i64, i16), Malformed> {
    let mut r = Reader { buf: answer };
    let _throttle = r.i32()?;
    let answer = (r.i16()?, r.i64()?, r.i16()?);
    r.skip_tags()?;
    Ok(answer)
}

/// Produce v7: each partition's answer (topic, partition, error code).
pub fn produce(answer: &[u8]) -> Result<Vec<(String, i32, i16)>, Malformed> {
    let mut r = Reader { buf: answer };
    let topics = r.array(6, |r| {
        let name = r.string()?;
        let partitions = r.array(30, |r| {
            let index = r.i32()?;
            let error = r.i16()?;
            let _base_offset = r.i64()?;
            let _append_time = r.i64()?;
            let _log_start = r.i64()?;
            Ok((index, error))
        })?;
        Ok((name, partitions))
    })?;
    let _throttle = r.i32()?;
    Ok(topics
        .into_iter()
        .flat_map(|(name, parts)| {
            parts
                .into_iter()
                .map(move |(index, error)| (name.clone(), index, error))
        })
        .collect())
}

/// Reads `bytes` as each answer; true if any could be read. For the fuzz target: no bytes a
/// broker sends may panic the output or make it reserve more than they weigh.
pub fn decode_any(bytes: &[u8]) -> bool {
    let plain = header(bytes, false).is_ok_and(|(_, answer)| {
        api_versions(answer).is_ok() | metadata(answer).is_ok() | produce(answer).is_ok()
    });
    let flexible = header(bytes, true).is_ok_and(|(_, answer)| init_producer_id(answer).is_ok());
    plain | flexible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_longer_than_its_answer_is_refused_before_anything_is_reserved() {
        // ApiVersions: no error, then 2^31-1 APIs in eight bytes.
        let answer = [0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, 0, 0];
        assert_eq!(
            api_versions(&answer),
            Err(Malformed("an array longer than the answer"))
        );
    }

    #[test]
    fn a_produce_answer_of_several_partitions_reads_back() {
        let mut a = Vec::new();
        a.extend_from_slice(&1i32.to_be_bytes());
        a.extend_from_slice(&4i16.to_be_bytes());
        a.extend_from_slice(b"logs");
        a.extend_from_slice(&3i32.to_be_bytes());
        for (index, error) in [(0i32, 0i16), (1, 46), (2, 6)] {
            a.extend_from_slice(&index.to_be_bytes());
            a.extend_from_slice(&error.to_be_bytes());
            a.extend_from_slice(&[0; 24]);
        }
        a.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(
            produce(&a),
            Ok(vec![
                ("logs".to_owned(), 0, 0),
                ("logs".to_owned(), 1, 46),
                ("logs".to_owned(), 2, 6)
            ])
        );
        assert!(produce(&a[..a.len() - 1]).is_err());
    }

    #[test]
    fn a_metadata_answer_of_two_topics_and_partitions_reads_back() {
        let mut a = Vec::new();
        let string = |a: &mut Vec<u8>, s: &str| {
            a.extend_from_slice(&(s.len() as i16).to_be_bytes());
            a.extend_from_slice(s.as_bytes());
        };
        a.extend_from_slice(&0i32.to_be_bytes()); // throttle
        a.extend_from_slice(&1i32.to_be_bytes()); // one broker
        a.extend_from_slice(&7i32.to_be_bytes());
        string(&mut a, "b7");
        a.extend_from_slice(&9092i32.to_be_bytes());
        a.extend_from_slice(&(-1i16).to_be_bytes()); // no rack
        a.extend_from_slice(&(-1i16).to_be_bytes()); // no cluster ID
        a.extend_from_slice(&7i32.to_be_bytes()); // controller
        a.extend_from_slice(&2i32.to_be_bytes()); // two topics
        for name in ["a", "logs"] {
            a.extend_from_slice(&0i16.to_be_bytes());
            string(&mut a, name);
            a.push(0);
            a.extend_from_slice(&2i32.to_be_bytes());
            for index in 0..2i32 {
                a.extend_from_slice(&0i16.to_be_bytes());
                a.extend_from_slice(&index.to_be_bytes());
                a.extend_from_slice(&7i32.to_be_bytes());
                for _ in 0..3 {
                    a.extend_from_slice(&0i32.to_be_bytes());
                }
            }
        }
        let (brokers, topics) = metadata(&a).unwrap();
        assert_eq!(brokers, vec![(7, "b7".to_owned(), 9092)]);
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[1].name, "logs");
        assert_eq!(topics[1].partitions, vec![(0, 7), (1, 7)]);
    }

    #[test]
    fn a_flexible_answer_skips_its_tagged_fields() {
        // Header v1: correlation 5, one tagged field (tag 0, two bytes).
        let mut body = vec![0, 0, 0, 5, 1, 0, 2, 0xaa, 0xbb];
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&42i64.to_be_bytes());
        body.extend_from_slice(&3i16.to_be_bytes());
        body.push(0);
        let (correlation, answer) = header(&body, true).unwrap();
        assert_eq!(correlation, 5);
        assert_eq!(init_producer_id(answer), Ok((0, 42, 3)));
    }
}
