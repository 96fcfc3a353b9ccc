import Testing
import CSQLite
@testable import Store
@Test func smoke() throws { #expect(sqlite3_libversion_number() > 0) }
