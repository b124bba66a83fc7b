# frozen_string_literal: true

require "test_helper"
require "json"
require "open3"
require "tmpdir"
require "zlib"
require_relative "../support/dump_parse"

# heapcapture report: the summary tallied in C equals a full parse of the same dump in Ruby (this
# Ruby's dump_all format, with allocation sites, and with lines that are not JSON: real ones from
# Ruby 3.1's ruby/ruby#6161 where this Ruby has that bug), references held and duplicate strings
# included; a known dump gives known numbers; a
# truncated .gz, a file that is no dump and an empty file each give one clear line and exit 1.
class ReportTest < HCTest::TestCase
  ROOT = HCTest::ROOT
  FIXTURE = File.join(ROOT, "test/fixtures/small-heap.ndjson")

  # A dump of a process that made objects at known sites, one of them in a method whose name is not
  # ASCII (Ruby 3.1 writes lines there that are not JSON; 3.2+ does not: one is added by hand then).
  DUMPER = <<~'RUBY'
    # encoding: utf-8
    require "objspace"
    ObjectSpace.trace_object_allocations_start
    def ❤ = Array.new(50) { |i| "heart #{i}" }
    $kept = [Array.new(300) { |i| "kept #{i}" * 3 }, Array.new(40) { { i: 1 } }, ❤, Array.new(120) { "same" },
             Array.new(7) { "long #{'x' * 80}" }]
    File.open(ARGV[0], "w") { |f| ObjectSpace.dump_all(output: f) }
    if RUBY_VERSION >= "3.2"
      File.write(ARGV[0], %({"address":"0x7f1", "type":"STRING", "method":"\xC3\xBF\x00stale\n) + %(bytes", "memsize":40}\n),
                 mode: "ab")
    end
  RUBY

  def test_the_summary_equals_a_full_parse_in_ruby
    Dir.mktmpdir("hc-report-") do |dir|
      plain = File.join(dir, "heap.ndjson")
      system(RbConfig.ruby, "-e", DUMPER, plain, exception: true)
      gz = "#{plain}.gz"
      Zlib::GzipWriter.open(gz) { |out| out.write(File.binread(plain)) }

      want = parse_in_ruby(plain)
      [plain, gz].each do |path|
        got = HeapCapture::Summary.of_file(path, top: 1_000_000, retention: false) # the tally alone
        assert_tally_with_retention(want, HeapCapture::Summary.of_file(path, top: 1_000_000), path)
        %w[lines objects memsize roots invalid_lines].each { |key| assert_equal want[key], got[key], "#{key} of #{path}" }
        assert_equal want["types"], got["types"]
        assert_equal want["generations"], got["generations"]
        assert_equal want["sites"], got["sites"].to_h { |s| [[s["file"], s["line"]], [s["objects"], s["memsize"]]] }
        assert_equal want["sites"].size, got["site_count"]
        assert_equal got["sites"].sort_by { |s| [-s["memsize"], -s["objects"], s["file"], s["line"]] }, got["sites"],
                     "sites by memsize"
        assert_references(want, got)
        assert_duplicate_strings(want, got)
      end
      assert_operator want["invalid_lines"], :>, 0, "the dump has lines that are not JSON"
      assert(want["sites"].any? { |(file, _), (objects, _)| file == "-e" && objects >= 300 }, "the kept strings' site")
    end
  end

  # With the retention analysis the tally's figures stay (types gain retained_*; "sites" becomes
  # every site, ranked by retained memsize, with all its objects' figures beside).
  def assert_tally_with_retention(want, got, path)
    assert_equal "computed", got["retention"], path
    assert_equal want["types"], got["types"].transform_values { |t| t.slice("objects", "memsize") }
    assert_equal want["sites"], got["sites"].to_h { |s| [[s["file"], s["line"]], [s["objects"], s["memsize"]]] }
    assert_equal got["sites"].sort_by { |s| [s["retained_memsize"].zero? ? 1 : 0, -s["retained_memsize"], -s["memsize"]] }
                             .map { |s| s.values_at("retained_memsize", "memsize") },
                 got["sites"].map { |s| s.values_at("retained_memsize", "memsize") }, "sites by retained memsize"
    held = got["retained"]["memsize"] + got["garbage"]["memsize"]
    assert_equal want["memsize"], held, "retained and garbage add up to the whole"
  end

  def test_a_known_dump_gives_known_numbers
    out, err, status = cli("report", FIXTURE, "--top", "2")
    assert status.success?, err
    assert_equal <<~TEXT, out
      #{FIXTURE}: 5 objects, 360 bytes memsize (632 bytes of ndjson, 7 lines)
        1 line(s) are not JSON and were left out (Ruby 3.1 writes such lines for methods whose name is not ASCII, ruby/ruby#6161)
        retained (reachable from a root): 1 objects, 40 bytes memsize
        awaiting GC (reachable from no root: freed by the next GC, not held): 4 objects, 320 bytes memsize

      by type:
        type                          objects        memsize       retained
        STRING                              3      160 bytes       40 bytes
        HASH                                1      160 bytes        0 bytes
        OBJECT                              1       40 bytes        0 bytes

      by generation (objects that carry one):
        generation                    objects        memsize
        7                                   2      120 bytes
        8                                   1      160 bytes

      top sites by retained memsize (3 sites in all; a site is known for objects allocated with tracing on; awaiting GC: what the next GC frees):
              retained      objects    awaiting GC  file:line
              40 bytes            1       80 bytes  app/models/user.rb:3
               0 bytes            0      160 bytes  app/models/order.rb:9

      top classes by retained memsize (their instances' own memsize):
        (none: no object's class is named in the dump)

      largest retainers (what each object alone keeps alive, itself included):
               retains      objects  own memsize  object
              40 bytes            1     40 bytes  STRING 0x1 at app/models/user.rb:3

      retained by class (instances not held by another of their class):
        (none)

      retained by allocation site (objects not held by another of their site):
               retains      objects  instances
              40 bytes            1          1  app/models/user.rb:3

      leak suspects (holding at least the suspect share of the retained heap):
        STRING 0x1 at app/models/user.rb:3 retains 40 bytes (100.0%) in 1 objects
          path from a root:
            ROOT vm
            STRING 0x1 at app/models/user.rb:3  memsize 40 bytes, retains 40 bytes

      top sites by object count (garbage included) (3 sites in all; a site is known for objects allocated with tracing on):
               memsize      objects  file:line
             120 bytes            2  app/models/user.rb:3
             160 bytes            1  app/models/order.rb:9

      top sites by references held (of their objects, in all):
          references      objects  file:line
                   2            1  app/models/order.rb:9

      objects holding the most references:
          references        memsize  object
                   2      160 bytes  HASH 0x3 at app/models/order.rb:9

      top duplicate strings (strings of the same value; values dump_all writes: ASCII ones):
            copies        memsize  value
                 2      120 bytes  "hi" (2 bytes) at app/models/user.rb:3
    TEXT
    json, = cli("report", FIXTURE, "--json")
    summary = JSON.parse(json)
    assert_equal [5, 360, 1, 1, 3], summary.values_at("objects", "memsize", "roots", "invalid_lines", "site_count")
    # by hand: the root holds 0x1 alone; 0x2, 0x3 (which holds 0x1 and 0x2), 0x4 and 0x6 await GC
    assert_equal [{ "objects" => 1, "memsize" => 40 }, { "objects" => 4, "memsize" => 320 }],
                 summary.values_at("retained", "garbage")
    assert_equal [["object", "0x1", 1.0, 2]],
                 summary["suspects"].map { |s| s.values_at("kind", "address", "share", "path_length") }
    assert_equal [2, [{ "value" => "hi", "truncated" => false, "bytesize" => 2, "count" => 2, "memsize" => 120,
                        "file" => "app/models/user.rb", "line" => 3, "more_sites" => false }]],
                 summary.values_at("references", "duplicate_strings")
  end

  def test_bad_input_is_one_clear_line_and_exit_1
    Dir.mktmpdir("hc-report-bad-") do |dir|
      truncated = File.join(dir, "cut.ndjson.gz")
      Zlib::GzipWriter.open(truncated) { |gz| gz.write(File.binread(FIXTURE) * 200) }
      File.binwrite(truncated, File.binread(truncated)[0, 300])
      not_dump = File.join(dir, "notes.txt")
      File.write(not_dump, "shopping list\nmilk\n")
      empty = File.join(dir, "empty.ndjson")
      File.write(empty, "")
      {
        truncated => "heapcapture: #{truncated} is not a whole gzip file: it ends before its gzip stream does " \
                     "(a download cut short? fetch it again)\n",
        not_dump => "heapcapture: #{not_dump} is not a heap dump: none of its 2 line(s) is a record " \
                    "ObjectSpace.dump_all writes\n",
        empty => "heapcapture: #{empty} is empty: there is no heap dump in it\n"
      }.each do |path, message|
        out, err, status = cli("report", path)
        assert_equal [1, "", message], [status.exitstatus, out, err]
      end
    end
  end

  def test_latest_and_a_key_are_read_from_the_destination
    Dir.mktmpdir("hc-report-dest-") do |dir|
      key = "2026-12-02T06-58-05Z-web.1-pid7-heap.ndjson.gz"
      Zlib::GzipWriter.open(File.join(dir, key)) { |gz| gz.write(File.binread(FIXTURE)) }
      env = { "HEAPCAPTURE_DESTINATION" => "file://#{dir}", "HEAPCAPTURE_TMPDIR" => dir }
      [["latest"], [key]].each do |args|
        out, err, status = cli("report", *args, "--json", env: env)
        assert status.success?, err
        assert_equal [5, 360], JSON.parse(out).values_at("objects", "memsize")
      end
      assert_equal [key], Dir.children(dir), "the downloaded copy was removed"
    end
  end

  private

  def assert_references(want, got)
    assert_equal want["references"], got["references"]
    assert_equal want["site_references"].reject { |_, refs| refs.zero? },
                 got["sites_by_references"].to_h { |s| [[s["file"], s["line"]], s["references"]] }
    holders = want["holders"].sort_by { |address, refs, memsize| [-refs, -memsize, Integer(address)] }
    assert_equal holders, got["most_references"].map { |h| h.values_at("address", "references", "memsize") }
    assert_operator holders.first[1], :>=, 300, "the kept array of 300 strings is among them"
    kept = got["most_references"].find { |h| h.values_at("file", "line", "references") == ["-e", 5, 300] }
    assert_equal %w[ARRAY Array], kept&.values_at("type", "class"), "the kept array, named by its class"
  end

  def assert_duplicate_strings(want, got)
    dups = want["strings"].select { |_, (copies, _)| copies > 1 }
    assert_equal dups.size, got["duplicate_strings"].size
    got["duplicate_strings"].each do |d|
      value = d["truncated"] ? dups.keys.find { |v| v.start_with?(d["value"]) && v.bytesize == d["bytesize"] } : d["value"]
      assert_equal dups[value], d.values_at("count", "memsize"), "copies of #{value.inspect}"
    end
    same = got["duplicate_strings"].find { |d| d["value"] == "same" }
    assert_operator same["count"], :>=, 120
    assert_equal ["-e", 5], same.values_at("file", "line")
    long = got["duplicate_strings"].find { |d| d["value"].start_with?("long x") }
    assert long["truncated"]
    assert_equal [7, 85], long.values_at("count", "bytesize")
  end

  def cli(*args, env: {})
    Open3.capture3(env, RbConfig.ruby, "-I#{File.join(ROOT, 'lib')}", File.join(ROOT, "exe/heapcapture"), *args)
  end

  def parse_in_ruby(path) = HCTest::DumpParse.tallies(path)
end
