//! Serial numbers at server level: 200 sequential and 200 concurrent requests to one
//! `hanko serve --dev` give 400 distinct serials; after SIGTERM and a restart on the same
//! data directory 50 more repeat none; and every granted token is in the issuance log
//! (read with the sqlite3 CLI once the server has stopped), byte for byte.

use std::collections::HashMap;
use std::net::SocketAddr;

use hanko_pki::HashAlgorithm;

use crate::common::tsp::{
    assert_log_holds_exactly, dev_server, request_der, serial_hex, timestamp, token_of,
};
use crate::common::{Server, hanko, load_turn, on_threads};

/// One request, returning (serial hex, token DER).
fn stamp(addr: SocketAddr, i: u64) -> (String, Vec<u8>) {
    let req = request_der(
        HashAlgorithm::Sha256,
        format!("document {i}").as_bytes(),
        Some(i + 1),
        i.is_multiple_of(2),
        None,
    );
    let resp = timestamp(addr, &req);
    let (token, tst) = token_of(&resp);
    (
        serial_hex(&tst.serial_number),
        rasn::der::encode(&token).unwrap(),
    )
}

#[test]
fn serials_are_unique_across_concurrency_and_restart_and_all_are_logged() {
    let _turn = load_turn();
    let tmp = tempfile::tempdir().unwrap();
    let (server, data) = dev_server(tmp.path());
    let addr = server.addr;
    let mut issued: HashMap<String, Vec<u8>> = HashMap::new();
    let add = |issued: &mut HashMap<String, Vec<u8>>, (serial, token): (String, Vec<u8>)| {
        assert!(
            issued.insert(serial.clone(), token).is_none(),
            "serial {serial} repeated"
        );
    };

    for i in 0..200 {
        add(&mut issued, stamp(addr, i));
    }
    // 200 concurrent: 50 client threads over loopback, 4 requests each (below the
    // signing queue depth, so that every request is granted).
    for r in on_threads(50, 4, |t, k| stamp(addr, 1000 + (t * 4 + k) as u64)) {
        add(&mut issued, r);
    }
    assert_eq!(issued.len(), 400);

    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    let server = Server::start(hanko(), &["--dev", "--data-dir", data.to_str().unwrap()]);
    for i in 0..50 {
        add(&mut issued, stamp(server.addr, 5000 + i));
    }
    assert_eq!(issued.len(), 450);
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    assert_log_holds_exactly(&data, &issued);
}
