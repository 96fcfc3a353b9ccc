// --db arguments as vantages: names from the file, NAME=PATH, a path that
// contains "=" stays a path, clashing names are one sentence.
import Reports
import Testing

@Suite struct VantageTests {
    @Test func namesComeFromTheFileOrAreGiven() throws {
        let none: (String) -> Bool = { _ in false }
        #expect(try parseVantages(["/backups/home.db", "office.sqlite", "lab", "far=/x/pingem.db"], fileExists: none) == [
            VantageDatabase(name: "home", path: "/backups/home.db"),
            VantageDatabase(name: "office", path: "office.sqlite"),
            VantageDatabase(name: "lab", path: "lab"),
            VantageDatabase(name: "far", path: "/x/pingem.db"),
        ])
        // A file that exists is a path, "=" or not; so is anything with "/" before the "=".
        #expect(try parseVantages(["a=b.db", "/data/x=1.db"], fileExists: { $0 == "a=b.db" }) == [
            VantageDatabase(name: "a=b", path: "a=b.db"),
            VantageDatabase(name: "x=1", path: "/data/x=1.db"),
        ])
        #expect(vantageName(ofPath: ".hidden") == ".hidden")
        #expect(vantageName(ofPath: "dir/") == "dir")
    }

    @Test func clashesAndEmptyPartsAreRefused() {
        #expect {
            _ = try parseVantages(["a/pingem.db", "b/pingem.db"], fileExists: { _ in false })
        } throws: { error in
            "\(error)" == "Two databases are both called \"pingem\" (a/pingem.db, b/pingem.db): name them with --db NAME=PATH, e.g. --db pingem-2=b/pingem.db."
        }
        #expect(throws: ReportError.self) { _ = try parseVantages(["=x.db", "y.db"], fileExists: { _ in false }) }
        #expect(throws: ReportError.self) { _ = try parseVantages(["x=", "y.db"], fileExists: { _ in false }) }
    }
}
