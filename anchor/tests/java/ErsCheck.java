// Bouncy Castle's RFC 4998 implementation (org.bouncycastle.tsp.ers) as the third-party
// checker of hanko-anchor's evidence records. Compiled and run by src/test_support.rs
// (the test-support feature) for tests/anchor/bc.rs and hanko-server's anchor tests.
//
// Usage: java ErsCheck CASES
// CASES has one tab-separated line per record: name, evidence record (DER file), the
// data object (file), the TSA certificate (PEM file). For each it prints
//   name <TAB> right=R <TAB> sig=S <TAB> wrong=W
// R: validatePresent with the data; S: validate with a verifier over the TSA
// certificate (the time-stamp signatures); W: validatePresent with the data with one
// byte changed. Each is "valid" or "invalid: <reason>".

import java.io.FileReader;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.Security;
import java.util.Date;

import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cms.SignerInformationVerifier;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.operator.DigestCalculatorProvider;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.tsp.ers.ERSByteData;
import org.bouncycastle.tsp.ers.ERSEvidenceRecord;

public class ErsCheck {
    interface Check {
        void run() throws Exception;
    }

    static String attempt(Check c) {
        try {
            c.run();
            return "valid";
        } catch (Exception e) {
            return ("invalid: " + e).replaceAll("[\t\r\n]", " ");
        }
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
            byte[] er = Files.readAllBytes(Paths.get(f[1]));
            byte[] data = Files.readAllBytes(Paths.get(f[2]));
            X509CertificateHolder cert;
            try (PEMParser pem = new PEMParser(new FileReader(f[3]))) {
                cert = (X509CertificateHolder) pem.readObject();
            }
            ERSEvidenceRecord record;
            try {
                record = new ERSEvidenceRecord(er, digests);
            } catch (Exception e) {
                String why = ("invalid: " + e).replaceAll("[\t\r\n]", " ");
                System.out.println(f[0] + "\tright=" + why + "\tsig=" + why + "\twrong=" + why);
                continue;
            }
            Date now = new Date();
            String right = attempt(() -> record.validatePresent(new ERSByteData(data), now));
            SignerInformationVerifier verifier =
                new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(cert);
            String sig = attempt(() -> record.validate(verifier));
            byte[] changed = data.clone();
            changed[changed.length / 2] ^= 0x01;
            String wrong = attempt(() -> record.validatePresent(new ERSByteData(changed), now));
            System.out.println(f[0] + "\tright=" + right + "\tsig=" + sig + "\twrong=" + wrong);
        }
    }
}
