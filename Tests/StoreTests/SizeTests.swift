import Foundation
import Testing
import TestSupport
import Store

/// Measures (prints, never asserts) bytes per probe, write rate and scan time
/// for a realistic long recording: 10 targets at 1 s, ~20 ms RTTs with jitter
/// at ns resolution, ~2 % of replies as late rows in the reply table.
@Suite struct SizeTests {
    @Test func bytesPerProbe() throws {
        let folder = TemporaryFolder()
        let path = folder.file("size.db")
        let probeCount = 1_000_000
        let targetCount = 10
        var generator = SplitMix64(seed: 42)
        let t0: Int64 = 1_700_000_000_000_000_000

        var batch = WriteBatch()
        batch.probes.reserveCapacity(probeCount)
        for index in 0..<probeCount {
            let slot = Int64(index / targetCount)
            let target = Int64(index % targetCount)
            // Send times wobble by scheduling latency, in ns.
            let sent = t0 + slot * 1_000_000_000 + target * 100_000_000 + Int64.random(in: 0..<200_000, using: &generator)
            let rtt = 20_000_000 + Int64.random(in: -3_000_000...3_000_000, using: &generator)
            if Int.random(in: 0..<100, using: &generator) < 2 {
                batch.probes.append(ProbeRecord(sentNs: sent, targetID: target + 1))
                batch.replies.append(ReplyRecord(sentNs: sent, targetID: target + 1, rttNs: rtt))
            } else {
                batch.probes.append(ProbeRecord(sentNs: sent, targetID: target + 1, rttNs: rtt))
            }
        }
        batch.heartbeatNs = batch.probes.last!.sentNs

        let started = ContinuousClock.now
        var writeTime = Duration.zero
        do {
            let database = try Database(path: path, mode: .readWrite)
            for target in 1...targetCount { _ = try database.target(name: "t\(target)", host: "192.0.2.\(target)") }
            let session = try database.beginSession(sampleSession, targets: [])
            let writeStart = ContinuousClock.now
            try database.write(batch, session: session)
            writeTime = ContinuousClock.now - writeStart
        }
        _ = started
        // Closing checkpoints the WAL into the main file.
        let size = fileBytes(path)?.count ?? 0
        let reader = try Database(path: path, mode: .readOnly)
        var scanned = 0
        var withRTT = 0
        let scanStart = ContinuousClock.now
        try reader.forEachProbe(from: .min, to: .max, targets: nil) { probe in
            scanned += 1
            if probe.rttNs != nil { withRTT += 1 }
        }
        let scanTime = ContinuousClock.now - scanStart
        let replies = try reader.replies(from: .min, to: .max, targets: nil)

        #expect(scanned == probeCount)
        #expect(withRTT + replies.count == probeCount)
        let seconds = Double(writeTime.components.seconds) + Double(writeTime.components.attoseconds) / 1e18
        print("""
            [size] \(probeCount) probes, \(replies.count) reply rows: \(size) bytes, \
            \(String(format: "%.1f", Double(size) / Double(probeCount))) bytes/probe; \
            write \(Int(Double(probeCount) / seconds)) probes/s; scan of all probes \(scanTime)
            """)
    }
}
