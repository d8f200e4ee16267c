// Bouncy Castle's RFC 3161 implementation (org.bouncycastle.tsp) as a third-party
// verifier of Hanko's time-stamp tokens: the verifier the Java world and EU DSS build on.
// Compiled and run by hanko-server's integration tests (common/bc.rs, through
// hanko_anchor::test_support::compile_java) with Debian's libbcprov-java and
// libbcpkix-java; nothing of Hanko's code is involved in a verdict.
//
// Usage: java TspCheck CASES
// CASES has one tab-separated line per response: name, the DER TimeStampResp (file), the
// time-stamped data (file), the TSA certificate, the root, the intermediate (PEM files).
// For each it prints
//   name <TAB> valid <TAB> <signature algorithm OID>
// or
//   name <TAB> invalid: <reason>
// "valid" means, all with Bouncy Castle:
//   1. the response is granted and holds a token (TimeStampResponse);
//   2. TimeStampToken.validate with a verifier over the TSA certificate: the token's
//      ESSCertID / ESSCertIDv2 names that certificate (RFC 3161 / RFC 5816), the
//      certificate has the critical id-kp-timeStamping EKU and was valid at genTime, and
//      the SignerInfo's signature over the signed attributes verifies (RFC 5652; RSASSA-PSS
//      parameters RFC 4056, Ed25519 RFC 8419);
//   3. the message imprint is the digest of the data with the token's hash algorithm;
//   4. the TSA certificate chains to the root through the intermediate (PKIX at genTime,
//      no revocation checking: the dev PKI publishes no CRLs).

import java.io.FileReader;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.Security;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.Collections;

import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.operator.DigestCalculator;
import org.bouncycastle.operator.DigestCalculatorProvider;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.tsp.TimeStampResponse;
import org.bouncycastle.tsp.TimeStampToken;

public class TspCheck {
    static X509CertificateHolder pem(String path) throws Exception {
        try (PEMParser p = new PEMParser(new FileReader(path))) {
            return (X509CertificateHolder) p.readObject();
        }
    }

    /** The signature algorithm OID of a valid case; throws with the reason otherwise. */
    static String check(String[] f, DigestCalculatorProvider digests) throws Exception {
        TimeStampResponse resp = new TimeStampResponse(Files.readAllBytes(Paths.get(f[1])));
        TimeStampToken token = resp.getTimeStampToken();
        if (token == null) {
            throw new Exception("no token, status " + resp.getStatus());
        }
        X509CertificateHolder tsa = pem(f[3]);
        token.validate(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(tsa));

        AlgorithmIdentifier hash =
            new AlgorithmIdentifier(token.getTimeStampInfo().getMessageImprintAlgOID());
        DigestCalculator calc = digests.get(hash);
        calc.getOutputStream().write(Files.readAllBytes(Paths.get(f[2])));
        calc.getOutputStream().close();
        if (!Arrays.equals(calc.getDigest(), token.getTimeStampInfo().getMessageImprintDigest())) {
            throw new Exception("message imprint is not the digest of the data");
        }

        JcaX509CertificateConverter conv = new JcaX509CertificateConverter().setProvider("BC");
        X509Certificate root = conv.getCertificate(pem(f[4]));
        CertificateFactory cf = CertificateFactory.getInstance("X.509", "BC");
        PKIXParameters params =
            new PKIXParameters(Collections.singleton(new TrustAnchor(root, null)));
        params.setRevocationEnabled(false);
        params.setDate(token.getTimeStampInfo().getGenTime());
        CertPathValidator.getInstance("PKIX", "BC").validate(
            cf.generateCertPath(
                Arrays.asList(conv.getCertificate(tsa), conv.getCertificate(pem(f[5])))),
            params);

        SignerInformation si = token.toCMSSignedData().getSignerInfos().getSigners().iterator().next();
        return si.getEncryptionAlgOID();
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        DigestCalculatorProvider digests =
            new JcaDigestCalculatorProviderBuilder().setProvider("BC").build();
        for (String line : Files.readAllLines(Paths.get(args[0]))) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split("\t");
            String verdict;
            try {
                verdict = "valid\t" + check(f, digests);
            } catch (Exception e) {
                verdict = ("invalid: " + e).replaceAll("[\t\r\n]", " ");
            }
            System.out.println(f[0] + "\t" + verdict);
        }
    }
}
