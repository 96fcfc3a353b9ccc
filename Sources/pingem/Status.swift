import ArgumentParser
import Foundation
import Reports
import Store

extension Pingem {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Is a recorder running on this database, since when, and what has it written."
        )

        @OptionGroup var database: DatabaseOption

        func run() throws {
            let path = database.path
            let status: StoreStatus
            do {
                let db = try Database(path: path, mode: .readOnly)
                status = try db.statusSummary()
            } catch {
                throw fail(error)
            }
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            print(renderStatus(status, path: path, recorderPID: RecorderLock.holder(databasePath: path), now: now), terminator: "")
        }
    }
}
