# frozen_string_literal: true

# Run by test/capture/sampled_tracing_test.rb in a process of its own (the tracer is process-wide): arms
# heapcapture's sampled tracer, lets a "leak" pile up over a few seconds beside other work, then
# does what ARGV[0] says and prints one JSON line of findings.
#   capture DIR: a fork-mode capture into file://DIR, the dump's sites checked against the truth
#   annotate [compact]: dump_all in this process, annotated by Tracer.annotate (after GC.compact)
#   churn: a million short-lived allocations; the table's size and what is still live
#   rearm: the sampled default stopped after a pile-up (kept alive) and armed again: the samples
#     live before and after the stop, the rate it then gives, and after a full-tracing window; the
#     notes, the allocations since the new arming and those of the window, as counted here
#   first_window: the sampled default stopped, 10 M allocations, armed again: the weight of the
#     first window after the arming (which must not stand for the allocations made while stopped)
#   estimate DIR [full]: 300,000 objects kept from one line, a fork-mode capture into file://DIR;
#     with full, made in a full-tracing window (as signal's trace_for opens) instead
require "heapcapture"
require "json"
require "zlib"

class Leak; end

# 100,000 strings and 100,000 Leak objects, added evenly over `seconds` between other work.
STRING_LINE = __LINE__ + 10
OBJECT_LINE = __LINE__ + 10
def pile_up(seconds)
  kept = []
  start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  i = 0
  loop do
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
    due = [(elapsed / seconds * 100_000).ceil, 100_000].min # pairs kept by now
    while kept.size < due * 2
      kept << "leak string #{i}"
      kept << Leak.new
    end
    break if kept.size == 200_000 && elapsed >= seconds

    @work = { at: i, list: [i, i.to_s] } # other work: garbage (only the last one stays)
    i += 1
  end
  kept
end

# count Leak objects made at ONE_SITE_LINE, each followed by `work` pairs of garbage: the same mix of
# allocations all along, whenever the sampled tracer's windows open (a pile-up by time, as pile_up
# does, catches up in a burst after each wait for the GVL, just when the sampler has opened one).
ONE_SITE_LINE = __LINE__ + 4
def pile_up_at_one_site(count, work)
  kept = []
  while kept.size < count
    kept << Leak.new
    work.times { |j| @work = [j, j.to_s] }
  end
  kept
end

# What a record of this file is allowed to say, by what the object is.
def check(records, leak_class)
  mine = records.select { |r| r["file"] == __FILE__ }
  strings = mine.count { |r| r["type"] == "STRING" && r["line"] == STRING_LINE && r["value"].to_s.match?(/\Aleak string \d+\z/) }
  objects = mine.count { |r| r["type"] == "OBJECT" && r["line"] == OBJECT_LINE && r["class"] == leak_class }
  wrong = mine.reject do |r|
    (r["line"] == STRING_LINE && r["type"] == "STRING" && r["value"].to_s.match?(/\Aleak string \d+\z/)) ||
      (r["line"] == OBJECT_LINE && r["type"] == "OBJECT" && r["class"] == leak_class) ||
      (r["line"] == STRING_LINE && r["type"] == "STRING" && r["value"].to_s.match?(/\A\d+\z/)) || # i.to_s of the
      r["line"] == STRING_LINE + 5 # interpolation, garbage not yet collected; the garbage line likewise
  end
  { "strings" => strings, "objects" => objects, "wrong" => wrong.first(5),
    "generations" => mine.all? { |r| r["generation"].is_a?(Integer) } }
end

HeapCapture.configure { |c| c.logger = Logger.new(File::NULL) }
HeapCapture::Tracing.arm(:sampled)
def address_of(klass) = format("0x%x", ObjectSpace.dump(klass)[/"address":"(0x\h+)"/, 1].to_i(16))
leak_class = address_of(Leak)
case ARGV[0]
when "capture"
  kept = pile_up(4)
  result = HeapCapture.capture("sampled", mode: :fork, destination: "file://#{ARGV[1]}", tmpdir: ARGV[1],
                                          trace_allocations: :sampled)
  records = Zlib::GzipReader.open(result["location"]) { |gz| gz.each_line.map { |l| JSON.parse(l) } }
  # Checking the samples of objects that died allocates nothing (no exception of _id2ref's is left
  # in the child's dump), unless a GC.compact ran.
  range_errors = records.count { |r| r["class"] == address_of(RangeError) }
  puts JSON.generate(check(records, leak_class).merge("status" => result["status"], "error" => result["error"],
                                                      "tracing" => result["tracing"], "kept" => kept.size,
                                                      "range_errors" => range_errors))
when "annotate"
  kept = pile_up(4)
  GC.compact if ARGV[1] == "compact"
  leak_class = address_of(Leak)
  GC.disable # as a capture does: nothing freed between the dump and the check of the samples
  plain = ObjectSpace.dump_all(output: :string)
  annotated = HeapCapture::Tracer.annotate(plain)
  GC.enable
  stripped = annotated.gsub(/, "file":"[^"]*", "line":\d+(, "method":"[^"]*")?, "generation":\d+, "sample_weight":\d+/, "")
  records = annotated.each_line.map { |l| JSON.parse(l) }
  puts JSON.generate(check(records, leak_class).merge("identical" => stripped == plain, "kept" => kept.size))
when "estimate"
  HeapCapture::Tracing.open_window(600) if ARGV[2] == "full"
  kept = pile_up_at_one_site(300_000, ARGV[2] == "full" ? 0 : 8)
  result = HeapCapture.capture("estimate", mode: :fork, destination: "file://#{ARGV[1]}", tmpdir: ARGV[1])
  HeapCapture::Tracing.close_window
  site = result.dig("summary", "sites")&.find { |s| s["file"] == __FILE__ && s["line"] == ONE_SITE_LINE }
  puts JSON.generate("status" => result["status"], "error" => result["error"], "tracing" => result["tracing"],
                     "location" => result["location"], "kept" => kept.size, "file" => __FILE__, "line" => ONE_SITE_LINE,
                     "result_site" => site, "weight" => HeapCapture::Tracer.stats["weight"])
when "rearm"
  before = pile_up(3) # notes made before the stop: the new run's rate must not count them; kept alive
  live_before_stop = HeapCapture::Tracer.live_sites.size
  HeapCapture::Tracing.stop_sampled
  live_after_stop = HeapCapture::Tracer.live_sites.size # the pile-up is alive, its samples are gone
  before.clear # alive until here
  noted = HeapCapture::Tracer.stats["noted"]
  allocated = GC.stat(:total_allocated_objects)
  HeapCapture::Tracing.arm(:sampled)
  windows = HeapCapture::Tracer.stats["windows"]
  kept = []
  # until the sampler has opened a few windows (it gets the GVL when this loop's time slice ends)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 60
  while HeapCapture::Tracer.stats["windows"] - windows < 5 && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    kept.concat(pile_up_at_one_site(20_000, 8))
  end
  rearmed = HeapCapture::Tracing.description
  # a full-tracing window (trace_for): the sampled tracer is off in it, its allocations not in the rate
  window_start = GC.stat(:total_allocated_objects)
  HeapCapture::Tracing.open_window(600)
  pile_up_at_one_site(50_000, 8)
  HeapCapture::Tracing.close_window
  in_window = GC.stat(:total_allocated_objects) - window_start
  puts JSON.generate("rate" => rearmed, "after_window" => HeapCapture::Tracing.description,
                     "noted" => HeapCapture::Tracer.stats["noted"] - noted, "in_window" => in_window,
                     "allocations" => GC.stat(:total_allocated_objects) - allocated, "kept" => kept.size,
                     "live_before_stop" => live_before_stop, "live_after_stop" => live_after_stop)
when "first_window"
  HeapCapture::Tracing.stop_sampled
  before = GC.stat(:total_allocated_objects)
  10_000_000.times { |i| @work = i.to_s } # nothing samples these
  unsampled = GC.stat(:total_allocated_objects) - before
  HeapCapture::Tracing.arm(:sampled)
  windows = HeapCapture::Tracer.stats["windows"]
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 60
  while HeapCapture::Tracer.stats["windows"] == windows && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    2_000.times { |j| @work = j.to_s }
    Thread.pass # the sampler thread gets the GVL
  end
  puts JSON.generate("unsampled" => unsampled, "windows" => HeapCapture::Tracer.stats["windows"] - windows,
                     "weight" => HeapCapture::Tracer.stats["weight"])
when "churn"
  1_000_000.times do |i|
    _garbage = "short-lived #{i}"
    Thread.pass if (i % 50_000).zero? # the sampler thread gets the GVL (a CPU-bound loop keeps it 100 ms)
  end
  GC.start
  stats = HeapCapture::Tracer.stats
  puts JSON.generate(stats.merge("live" => HeapCapture::Tracer.live_sites.size))
end
