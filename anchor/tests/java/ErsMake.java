// Bouncy Castle's RFC 4998 implementation (org.bouncycastle.tsp.ers) as the PRODUCER of
// evidence records made by another product, for the import tests of issue #16 (Hanko
// checks and renews them, then ErsCheck.java validates the renewed records). Compiled
// and run by src/test_support.rs (the test-support feature).
//
// Usage: java ErsMake OUTDIR DATA...
// Generates, in memory and anew on every run, a P-256 root CA key and a P-256 TSA key
// (never written: the records are the only output that needs them), a root certificate
// and a TSA certificate (critical extendedKeyUsage timeStamping) valid for two years;
// time-stamps one hash tree over all DATA files with BC's TimeStampTokenGenerator
// (certReq set: the TSA certificate is in the token); and writes, for each DATA file,
// its evidence record OUTDIR/<name of DATA>.ers (DER), then OUTDIR/root.pem and
// OUTDIR/tsa.pem.

import java.io.File;
import java.io.FileWriter;
import java.math.BigInteger;
import java.nio.file.Files;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Security;
import java.security.spec.ECGenParameterSpec;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Date;
import java.util.List;

import org.bouncycastle.asn1.ASN1Encoding;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaCertStore;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoGeneratorBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.DigestCalculator;
import org.bouncycastle.operator.DigestCalculatorProvider;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.tsp.TSPAlgorithms;
import org.bouncycastle.tsp.TimeStampRequest;
import org.bouncycastle.tsp.TimeStampRequestGenerator;
import org.bouncycastle.tsp.TimeStampResponse;
import org.bouncycastle.tsp.TimeStampResponseGenerator;
import org.bouncycastle.tsp.TimeStampTokenGenerator;
import org.bouncycastle.tsp.ers.ERSArchiveTimeStamp;
import org.bouncycastle.tsp.ers.ERSArchiveTimeStampGenerator;
import org.bouncycastle.tsp.ers.ERSByteData;
import org.bouncycastle.tsp.ers.ERSEvidenceRecord;
import org.bouncycastle.tsp.ers.ERSEvidenceRecordGenerator;

public class ErsMake {
    static final long DAY = 86_400_000L;

    static KeyPair p256() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC", "BC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    static void pem(File f, X509CertificateHolder c) throws Exception {
        try (JcaPEMWriter w = new JcaPEMWriter(new FileWriter(f))) {
            w.writeObject(c);
        }
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        File out = new File(args[0]);
        Date now = new Date();
        Date from = new Date(now.getTime() - DAY);
        Date to = new Date(now.getTime() + 730 * DAY);

        KeyPair rootKey = p256();
        X500Name rootName = new X500Name("C=JP,O=Hanko tests,CN=Bouncy Castle test root");
        JcaX509v3CertificateBuilder rb = new JcaX509v3CertificateBuilder(
            rootName, BigInteger.ONE, from, to, rootName, rootKey.getPublic());
        rb.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        rb.addExtension(Extension.keyUsage, true,
            new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        X509CertificateHolder root = rb.build(
            new JcaContentSignerBuilder("SHA256withECDSA").setProvider("BC").build(rootKey.getPrivate()));

        KeyPair tsaKey = p256();
        JcaX509v3CertificateBuilder tb = new JcaX509v3CertificateBuilder(
            rootName, BigInteger.valueOf(2), from, to,
            new X500Name("C=JP,O=Hanko tests,CN=Bouncy Castle test TSA"), tsaKey.getPublic());
        tb.addExtension(Extension.extendedKeyUsage, true,
            new ExtendedKeyUsage(KeyPurposeId.id_kp_timeStamping));
        tb.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
        X509CertificateHolder tsa = tb.build(
            new JcaContentSignerBuilder("SHA256withECDSA").setProvider("BC").build(rootKey.getPrivate()));

        DigestCalculatorProvider digests =
            new JcaDigestCalculatorProviderBuilder().setProvider("BC").build();
        DigestCalculator sha256 = digests.get(
            new org.bouncycastle.asn1.x509.AlgorithmIdentifier(TSPAlgorithms.SHA256));
        TimeStampTokenGenerator tokens = new TimeStampTokenGenerator(
            new JcaSimpleSignerInfoGeneratorBuilder().setProvider("BC")
                .build("SHA256withECDSA", tsaKey.getPrivate(), tsa),
            sha256, new ASN1ObjectIdentifier("1.3.6.1.4.1.55555.1"));
        tokens.addCertificates(new JcaCertStore(Collections.singletonList(tsa)));
        tokens.setAccuracySeconds(1);

        ERSArchiveTimeStampGenerator ats = new ERSArchiveTimeStampGenerator(
            digests.get(new org.bouncycastle.asn1.x509.AlgorithmIdentifier(TSPAlgorithms.SHA256)));
        List<byte[]> data = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            byte[] d = Files.readAllBytes(new File(args[i]).toPath());
            data.add(d);
            ats.addData(new ERSByteData(d));
        }
        TimeStampRequestGenerator reqGen = new TimeStampRequestGenerator();
        reqGen.setCertReq(true);
        TimeStampRequest req = ats.generateTimeStampRequest(reqGen);
        TimeStampResponse resp = new TimeStampResponseGenerator(tokens, TSPAlgorithms.ALLOWED)
            .generate(req, BigInteger.valueOf(now.getTime()), now);
        List<ERSArchiveTimeStamp> stamps = ats.generateArchiveTimeStamps(resp);
        List<ERSEvidenceRecord> records = new ERSEvidenceRecordGenerator(digests).generate(stamps);
        // The records come in BC's order: find each data object's by validating.
        for (int i = 1; i < args.length; i++) {
            byte[] d = data.get(i - 1);
            ERSEvidenceRecord mine = null;
            for (ERSEvidenceRecord r : records) {
                try {
                    r.validatePresent(new ERSByteData(d), now);
                    mine = r;
                    break;
                } catch (Exception e) {
                    // another object's record
                }
            }
            if (mine == null) {
                throw new IllegalStateException("no record validates " + args[i]);
            }
            File f = new File(out, new File(args[i]).getName() + ".ers");
            Files.write(f.toPath(), mine.toASN1Structure().getEncoded(ASN1Encoding.DER));
        }
        pem(new File(out, "root.pem"), root);
        pem(new File(out, "tsa.pem"), tsa);
    }
}
