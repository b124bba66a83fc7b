# frozen_string_literal: true

# Run by Capture::RetentionProcess (retention_process.rb) as
#   ruby --disable-gems retention_main.rb DUMP TOP SHARE [tree]
# in a process of its own, started from the app with posix_spawn (Process.spawn in a build without
# it): prints the dump's summary with its retention analysis as one JSON object (with "tree", the
# dominator tree's frames for the report page, when asked), with this process's peak RSS. Loads the
# native extension and Summary only, nothing of the app; a dump it cannot read exits 1 with the
# reason on stderr.
require_relative "../heapcapture" # the native extension
require_relative "../util"
require_relative "../errors"
require_relative "../summary"

path, top, share, tree = ARGV
begin
  summary = HeapCapture::Summary.of_file(path, top: Integer(top, 10), strings: false, share: Float(share),
                                               tree: tree == "tree" ? HeapCapture::Summary::TREE_SHARE : nil)
rescue HeapCapture::Error, SystemCallError => e
  warn HeapCapture::Util.unprefixed(e.message)
  exit 1
end
# The peak RSS last, once the JSON is made and written (it is the largest thing made after the
# analysis): {...summary, "retention_peak_bytes":N}
$stdout.write(JSON.generate(summary).chomp("}"))
peak_kb = File.read("/proc/self/status")[/^VmHWM:\s+(\d+)/, 1].to_i
$stdout.write(%(,"retention_peak_bytes":#{peak_kb * 1024}}))
