import Reports
import Store

/// Loads the last hour every second, keeping the database open between frames.
struct SnapshotReader {
    var path: String
    var judgement: JudgementOptions
    var timeoutNs: Int64
    var db: Database?

    init(path: String, judgement: JudgementOptions, timeoutNs: Int64) {
        self.path = path; self.judgement = judgement; self.timeoutNs = timeoutNs
    }

    mutating func lines(width: Int, color: Bool) -> [String] {
        let options = WatchFrameOptions(width: width, color: color, source: path)
        do {
            // The recorder creates the database: until it has, wait for it.
            if db == nil { db = try Database(path: path, mode: .readOnly) }
            let hour = Reports.Watch.hourOptions(now: nowNs(), timeoutNs: timeoutNs,
                                                 outageMin: judgement.outageMin, targets: judgement.target)
            var input = try ReportInput.load(from: db!, options: hour)
            try input.loadPathProbes(from: db!, options: hour)
            return Reports.Watch.frame(try Reports.Watch.snapshot(input, hour), options)
        } catch {
            db = nil
            return Reports.Watch.frame(WatchSnapshot(now: nowNs(), targets: []), options) + ["\(error)"]
        }
    }
}
