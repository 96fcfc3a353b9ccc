import ArgumentParser
import Foundation
import Reports
import Store

extension Pingem {
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete raw probes older than a duration and give the space back.",
            discussion: """
                Deletes probes (rows and compacted blocks), replies and ICMP errors of probes sent \
                before now minus --older-than; sessions, gaps, targets and addresses stay, so reports \
                of that time say "no data". Works while a recorder runs: every step is a short \
                transaction. A database made by an older pingem (schema version 1) is converted once \
                with a full VACUUM, and prune says so.
                """
        )

        @Option(name: .customLong("older-than"), help: ArgumentHelp("Delete probes sent longer ago than this (2h or more): 400d, 52w, 90d.", valueName: "duration"))
        var olderThan: String

        @OptionGroup var database: DatabaseOption

        func age() throws -> Int64 {
            do { return try parseDuration(olderThan) } catch let e as ReportError {
                throw ValidationError("--older-than: \(e.description)")
            }
        }

        func validate() throws {
            // Every hour a prune touches is summarized first, from its whole
            // hour; an hour ends and its late replies settle within 1.5 h.
            if try age() < 2 * 3_600_000_000_000 {
                throw ValidationError("--older-than must be at least 2h: hour summaries are built from whole hours before their probes are deleted.")
            }
        }

        func run() throws {
            let cutoff = nowNs() - (try age())
            let path = database.path
            guard FileManager.default.fileExists(atPath: path) else {
                throw fail(ValidationError("\(path) does not exist: give the database with --db."))
            }
            func size() -> Int64 {
                [path, path + "-wal"].reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int64) ?? 0) }
            }
            let before = size()
            let (probes, other): (Int64, Int64)
            do {
                (probes, other) = try prune(path: path, cutoff: cutoff)
            } catch {
                throw fail(error)
            }
            // After the connection closed: the WAL is folded back into the file.
            let mib = { (bytes: Int64) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
            print("deleted \(probes) probes and \(other) reply and ICMP error rows sent before \(isoUTC(cutoff)); "
                + "database \(mib(before)) -> \(mib(size()))")
        }

        /// Deletes in short steps, then gives the space back in short steps;
        /// between steps a waiting recorder takes the write lock.
        func prune(path: String, cutoff: Int64) throws -> (Int64, Int64) {
            // A read-write open refuses what is not a pingem database; it
            // takes no recorder lock, so a running recorder goes on.
            let db = try Database(path: path, mode: .readWrite)
            var pruning = Database.Pruning(cutoff: cutoff)
            while try !pruning.step(db) { usleep(1_000) }
            if pruning.lacksIncrementalVacuum {
                FileHandle.standardError.write(Data(("pingem: this database was made before incremental vacuum: converting it "
                    + "once with a full VACUUM (a running recorder holds its probes in memory meanwhile)\n").utf8))
                try db.convertToIncrementalVacuum()
            }
            db.checkpoint()
            return (pruning.probes, pruning.otherRows)
        }
    }
}
