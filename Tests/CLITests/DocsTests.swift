// The README is a front page (at most 20,000 bytes) and every relative link
// of it and of docs/ leads somewhere: a file that exists, and a heading that
// exists when the link names one (GitHub's anchor rule).
import Foundation
import Testing

@Suite struct DocsTests {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    func markdownFiles() throws -> [URL] {
        let docs = root.appendingPathComponent("docs")
        let names = try FileManager.default.contentsOfDirectory(atPath: docs.path).filter { $0.hasSuffix(".md") }
        return [root.appendingPathComponent("README.md")] + names.sorted().map { docs.appendingPathComponent($0) }
    }

    /// GitHub's anchor of a heading: lower case, punctuation but - and _ dropped, spaces to -.
    func anchors(_ text: String) -> Set<String> {
        var result = Set<String>()
        var fenced = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { fenced.toggle(); continue }
            guard !fenced, line.hasPrefix("#") else { continue }
            let title = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces).lowercased()
            let kept = title.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || "-_ ".unicodeScalars.contains($0) }
            result.insert(String(String.UnicodeScalarView(kept)).replacingOccurrences(of: " ", with: "-"))
        }
        return result
    }

    @Test func theReadmeIsAFrontPageThatLinksTheDocs() throws {
        let readme = root.appendingPathComponent("README.md")
        let bytes = try Data(contentsOf: readme).count
        #expect(bytes <= 20_000, "README.md is \(bytes) bytes: move reference material to docs/")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let linked = Set(text.matches(of: /\]\(docs\/([A-Z]+\.md)[)#]/).map { String($0.1) })
        #expect(linked.count >= 3, "README links \(linked.sorted())")
    }

    @Test func everyRelativeLinkLeadsToAFileAndHeadingThatExist() throws {
        var checked = 0
        for file in try markdownFiles() {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in text.matches(of: /\]\(([^)\s]+)\)/) {
                let link = String(match.1)
                if link.hasPrefix("http://") || link.hasPrefix("https://") || link.hasPrefix("mailto:") { continue }
                let parts = link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
                let target = parts[0].isEmpty ? file : file.deletingLastPathComponent().appendingPathComponent(String(parts[0])).standardized
                #expect(FileManager.default.fileExists(atPath: target.path), "\(file.lastPathComponent): \(link) leads nowhere")
                if parts.count == 2, target.pathExtension == "md", let linkedText = try? String(contentsOf: target, encoding: .utf8) {
                    #expect(anchors(linkedText).contains(String(parts[1])), "\(file.lastPathComponent): no heading #\(parts[1]) in \(target.lastPathComponent)")
                }
                checked += 1
            }
        }
        #expect(checked >= 10)
    }
}
