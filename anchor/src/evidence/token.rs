//! An archive time-stamp's token as the evidence check reads it: strictly (exact DER, the
//! `[0] EXPLICIT` tags constructed, the SignedData fields no signature covers), then its
//! imprint and genTime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_pki::oid;
use rasn::prelude::*;
use rasn_cms::tsp::TstInfo;
use rasn_cms::{ContentInfo, SignedData};
use rasn_pkix::AlgorithmIdentifier;

use super::{ArchiveTimeStamp, hash_alg};
use crate::Error;
use crate::tree::HashAlg;

/// What the check needs from a TimeStampToken.
pub(super) struct TokenInfo {
    pub(super) alg: HashAlg,
    pub(super) imprint: Vec<u8>,
    pub(super) gen_time: SystemTime,
}

impl TokenInfo {
    pub(super) fn parse(ats: &ArchiveTimeStamp, chain: usize, index: usize) -> Result<Self, Error> {
        let bad = |what: &str| Error::MalformedTimeStamp {
            chain,
            index,
            reason: what.to_owned(),
        };
        let der = ats.time_stamp.as_bytes();
        if !is_der(der, 0) {
            return Err(bad("the token is not DER"));
        }
        if !explicit_tags_constructed(der) {
            return Err(bad("the token's [0] EXPLICIT tags are not constructed"));
        }
        let ci: ContentInfo = rasn::der::decode(der).map_err(|_| bad("not a ContentInfo"))?;
        if ci.content_type != oid::to_rasn(&oid::SIGNED_DATA) {
            return Err(bad("not SignedData"));
        }
        let sd: SignedData =
            rasn::der::decode(ci.content.as_bytes()).map_err(|_| bad("malformed SignedData"))?;
        check_signed_data_fields(&sd).map_err(bad)?;
        let eci = &sd.encap_content_info;
        if eci.content_type != oid::to_rasn(&oid::TST_INFO) {
            return Err(bad("content is not TSTInfo"));
        }
        let tst_der = eci.content.as_ref().ok_or_else(|| bad("no eContent"))?;
        let tst: TstInfo = rasn::der::decode(tst_der).map_err(|_| bad("malformed TSTInfo"))?;
        let mi = &tst.message_imprint;
        let alg = HashAlg::from_oid(&mi.hash_algorithm.algorithm.to_string())
            .ok_or_else(|| Error::UnknownHashAlgorithm(mi.hash_algorithm.algorithm.to_string()))?;
        let imprint = mi.hashed_message.to_vec();
        if imprint.len() != alg.len() {
            return Err(bad("imprint length"));
        }
        let secs = u64::try_from(tst.gen_time.timestamp()).map_err(|_| bad("genTime"))?;
        let gen_time = UNIX_EPOCH
            .checked_add(Duration::new(secs, tst.gen_time.timestamp_subsec_nanos()))
            .ok_or_else(|| bad("genTime"))?;
        Ok(Self {
            alg,
            imprint,
            gen_time,
        })
    }

    /// The ArchiveTimeStamp's tree algorithm: its digestAlgorithm, which must be the
    /// token's imprint algorithm (rule 63a), or that one when absent.
    pub(super) fn tree_alg(
        &self,
        ats: &ArchiveTimeStamp,
        chain: usize,
        index: usize,
    ) -> Result<HashAlg, Error> {
        match &ats.digest_algorithm {
            None => Ok(self.alg),
            Some(a) if hash_alg(a)? == self.alg => Ok(self.alg),
            Some(_) => Err(Error::AlgorithmMismatch { chain, index }),
        }
    }
}

/// Whether every TLV in `input`, and recursively in every constructed one, is DER as
/// far as the bytes alone show: low tag numbers, minimal definite lengths, universal
/// SEQUENCE and SET constructed and every other universal type primitive, BIT STRINGs
/// with at most 7 unused bits, all zero. rasn's decoder lets a constructed OID or
/// INTEGER tag through; in a token's unsigned parts that would be a changed byte that
/// nothing refuses.
fn is_der(mut input: &[u8], depth: usize) -> bool {
    const MAX_DEPTH: usize = 32;
    if depth > MAX_DEPTH {
        return false;
    }
    while !input.is_empty() {
        let Some((tag, content, rest)) = hanko_pki::der::read_tlv(input) else {
            return false;
        };
        let header = input.len() - rest.len() - content.len();
        if header != 1 + hanko_pki::der::length(content.len()).len() {
            return false;
        }
        let constructed = tag & 0x20 != 0;
        if tag & 0xc0 == 0 {
            let number = tag & 0x1f;
            if number == 0 || constructed != matches!(number, 0x10 | 0x11) {
                return false;
            }
            if number == 0x03 {
                let ok = match content {
                    [0, ..] => true,
                    [unused, .., last] if *unused < 8 => last & ((1u8 << unused) - 1) == 0,
                    _ => false,
                };
                if !ok {
                    return false;
                }
            }
        }
        if constructed && !is_der(content, depth + 1) {
            return false;
        }
        input = rest;
    }
    true
}

/// ContentInfo.content and EncapsulatedContentInfo.eContent are `[0] EXPLICIT`: their
/// tag must be A0 (rasn accepts a primitive 80 too).
fn explicit_tags_constructed(der: &[u8]) -> bool {
    use hanko_pki::der::Cursor;
    let inner = |range: std::ops::Range<usize>| Cursor::new(der, range);
    let walk = || -> Option<bool> {
        let ci = inner(0..der.len()).next_tlv()?;
        let mut fields = inner(ci.content);
        fields.next_tlv()?;
        let content = fields.next_tlv()?;
        let signed_data = inner(content.content.clone()).next_tlv()?;
        let mut fields = inner(signed_data.content);
        fields.next_tlv()?; // version
        fields.next_tlv()?; // digestAlgorithms
        let eci = fields.next_tlv()?;
        let mut fields = inner(eci.content);
        fields.next_tlv()?; // eContentType
        let econtent = fields.next_tlv()?;
        Some(content.tag == 0xa0 && econtent.tag == 0xa0)
    };
    walk().unwrap_or(false)
}

/// The SignedData fields no signature covers: version 3 (RFC 5652 for an eContentType
/// other than id-data), digestAlgorithms known hashes that include the signer's, and
/// each SignerInfo's version matching its sid (1 for issuerAndSerialNumber, 3 for
/// subjectKeyIdentifier).
fn check_signed_data_fields(sd: &SignedData) -> Result<(), &'static str> {
    use rasn_cms::SignerIdentifier;
    if sd.version != Integer::from(3) {
        return Err("SignedData version is not 3");
    }
    let known = |a: &AlgorithmIdentifier| {
        hanko_pki::HashAlgorithm::from_oid(&a.algorithm.to_string()).is_ok()
            && a.parameters
                .as_ref()
                .is_none_or(|p| p.as_bytes() == [0x05, 0x00])
    };
    if !sd.digest_algorithms.to_vec().into_iter().all(known) {
        return Err("SignedData digestAlgorithms holds an unknown algorithm");
    }
    for si in sd.signer_infos.to_vec() {
        let want = match si.sid {
            SignerIdentifier::IssuerAndSerialNumber(_) => 1,
            SignerIdentifier::SubjectKeyIdentifier(_) => 3,
        };
        if si.version != Integer::from(want) {
            return Err("SignerInfo version does not match its sid");
        }
        if !sd
            .digest_algorithms
            .to_vec()
            .iter()
            .any(|a| a.algorithm == si.digest_algorithm.algorithm)
        {
            return Err("the signer's digest algorithm is not in SignedData digestAlgorithms");
        }
    }
    Ok(())
}
