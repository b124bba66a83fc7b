# frozen_string_literal: true

# libFuzzer harnesses for the pure C modules: test/c/fuzz_<module>.c, built with clang,
# -fsanitize=fuzzer,address,undefined, run for FUZZ_SECONDS (default 60). Not part of test:c.

# Seeds for the XML fuzzer: the shapes S3 sends.
FUZZ_S3_XML_SEEDS = {
  "seed-list" => "<ListBucketResult><IsTruncated>true</IsTruncated><Contents>" \
                 "<Key>a &amp; b</Key><Size>5</Size><LastModified>2026-11-21T20:30:42.000Z</LastModified></Contents>" \
                 "<NextContinuationToken>t</NextContinuationToken></ListBucketResult>",
  "seed-error" => "<Error><Code>SlowDown</Code><Message>m</Message><RequestId>r</RequestId></Error>",
  "seed-init" => "<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>"
}.freeze

# Seeds for the dump annotator: dump_all lines, sampled and not.
FUZZ_DUMP_ANNOTATE_SEEDS = {
  "seed-lines" => "\x07{\"address\":\"0x1f\", \"type\":\"STRING\", \"value\":\"a\", \"memsize\":40, " \
                  "\"flags\":{\"wb_protected\":true}}\n{\"type\":\"ROOT\", \"root\":\"vm\"}\n" \
                  "{\"address\":\"0x2\", \"type\":\"OBJECT\"}"
}.freeze

# Seeds for the dump line scanner: real dump_all lines of this Ruby (with allocation sites on), in
# pieces of 40 lines, and Ruby 3.1's broken line shape (ruby/ruby#6161).
FUZZ_HEAP_SCAN_SEEDS = lambda do
  script = 'require "objspace"; ObjectSpace.trace_object_allocations_start; x = ["a" * 30, {b: 1}, 1.5, :s, /r/]; ' \
           "print ObjectSpace.dump_all(output: :string); x"
  lines = IO.popen([RbConfig.ruby, "-e", script], &:read).lines
  seeds = lines.each_slice(40).first(50).each_with_index.to_h { |slice, i| ["seed-dump-#{i}", slice.join] }
  seeds.merge("seed-6161" => "{\"address\":\"0x7f1\", \"method\":\"\xC3\xBF\x00stale\nbytes\", \"memsize\":40}")
end

# Seeds for the dump graph and its retention analysis: pieces of a real dump_all (sites on, an object
# with a singleton class, an Array holding itself, garbage left to GC), each a ROOT record cut to a
# few of its references and the objects they reach breadth first (references and class), lines
# whole, under 4 KB (-max_len); and hand-made graphs: a diamond, a cycle, two roots sharing an
# object, garbage, a class edge, a reference to no object, ROOT records alone.
FUZZ_HEAP_GRAPH_SEEDS = lambda do
  require "json"
  script = 'require "objspace"; ObjectSpace.trace_object_allocations_start; o = Object.new; def o.hi = 1; ' \
           'o.hi; a = [{k: "v" * 30}, o, 1.5, :s]; a << a; 50.times { [Object.new, "x" * 40] }; ' \
           "print ObjectSpace.dump_all(output: :string); a"
  lines = IO.popen([RbConfig.ruby, "-e", script], &:read).lines.map(&:chomp)
  parsed = lines.filter_map do |line|
    [line, JSON.parse(line)]
  rescue JSON::ParserError
    nil # Ruby 3.1's broken lines (ruby/ruby#6161)
  end
  objects = {}
  parsed.each { |line, d| objects[d["address"]] ||= [line, d] if d["address"] && line.bytesize < 1200 }
  # a ROOT record of kind over starts, and what they reach breadth first, in the dump's order
  piece = lambda do |kind, starts|
    root = "{\"type\":\"ROOT\", \"root\":\"#{kind}\", \"references\":[#{starts.map { |a| "\"#{a}\"" }.join(', ')}]}"
    budget = 3800 - root.bytesize
    taken = {}
    queue = starts.dup
    while (address = queue.shift)
      line, d = objects[address]
      next if !line || taken[address] || line.bytesize + 1 > budget

      taken[address] = true
      budget -= line.bytesize + 1
      queue.concat([d["class"], *d["references"]].compact.grep(String))
    end
    kept = parsed.filter_map { |text, data| text if taken[data["address"]] && objects[data["address"]][0].equal?(text) }
    ([root] + kept).join("\n")
  end
  seeds = {}
  parsed.select { |_, d| d["type"] == "ROOT" }.first(8).each_with_index do |(_, d), i|
    refs = Array(d["references"]).grep(String).uniq.select { |a| objects[a] }
    [0, refs.size / 2].uniq.each { |at| seeds["seed-root-#{i}-#{at}"] = piece.call(d["root"], refs[at, 3]) if refs[at] }
  end
  singleton = parsed.find { |_, d| d["address"] && (c = objects[d["class"]]) && c[1]["singleton"] && d["type"] == "OBJECT" }
  seeds["seed-singleton"] = piece.call("machine_context", [singleton[1]["address"]]) if singleton
  sited = parsed.select { |_, d| d["file"] == "-e" && objects[d["address"]] }.map { |_, d| d["address"] }
  seeds["seed-sites"] = piece.call("vm", sited.first(6)) unless sited.empty?
  seeds.merge(
    "seed-diamond" => "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}\n" \
                      "{\"address\":\"0xa\", \"type\":\"OBJECT\", \"memsize\":10, \"references\":[\"0xb\", \"0xc\"]}\n" \
                      "{\"address\":\"0xb\", \"type\":\"ARRAY\", \"memsize\":20, \"references\":[\"0xd\"]}\n" \
                      "{\"address\":\"0xc\", \"type\":\"HASH\", \"memsize\":30, \"references\":[\"0xd\", \"0xc\"]}\n" \
                      "{\"address\":\"0xd\", \"type\":\"STRING\", \"memsize\":40, \"file\":\"a.rb\", \"line\":3}",
    "seed-cycle-garbage" => "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x1\", \"0x999\"]}\n" \
                            "{\"type\":\"ROOT\", \"root\":\"global_tbl\", \"references\":[\"0x2\"]}\n" \
                            "{\"address\":\"0x1\", \"memsize\":1, \"references\":[\"0x2\"]}\n" \
                            "{\"address\":\"0x2\", \"memsize\":2, \"references\":[\"0x3\", \"0x1\"]}\n" \
                            "{\"address\":\"0x3\", \"memsize\":4, \"references\":[\"0x2\"]}\n" \
                            "{\"address\":\"0x4\", \"memsize\":8, \"references\":[\"0x5\"]}\n" \
                            "{\"address\":\"0x5\", \"memsize\":16, \"references\":[\"0x4\", \"0x1\"]}",
    "seed-class-edge" => "{\"type\":\"ROOT\", \"root\":\"machine_context\", \"references\":[\"0x10\"]}\n" \
                         "{\"address\":\"0x10\", \"type\":\"OBJECT\", \"class\":\"0xc0\", \"memsize\":40, " \
                         "\"file\":\"/app/lib/heapcapture/x.rb\", \"line\":1}\n" \
                         "{\"address\":\"0xc0\", \"type\":\"CLASS\", \"class\":\"0xc1\", \"real_class_name\":\"Foo\", " \
                         "\"singleton\":true, \"references\":[\"0x40\"], \"memsize\":500}\n" \
                         "{\"address\":\"0xc1\", \"type\":\"CLASS\", \"name\":\"HeapCapture::Dump\", \"memsize\":100}\n" \
                         "{\"address\":\"0x40\", \"type\":\"IMEMO\", \"imemo_type\":\"ment\", \"class\":\"0xc0\", " \
                         "\"memsize\":20}\n" \
                         "{\"address\":\"0x50\", \"type\":\"SHAPE\", \"memsize\":0}",
    "seed-roots-only" => "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[]}\n" \
                         "{\"type\":\"ROOT\", \"root\":\"finalizer\", \"references\":[\"0x1\"]}"
  )
end

# Seeds for the age reader: files the age tool (bin/setup installs it) wrote for the harness's fixed
# identity (test/c/fuzz_age_reader.c), whose public key this is; empty, short, and near -max_len.
FUZZ_AGE_READER_SEEDS = lambda do
  [0, 100, 3000].to_h do |n|
    file = IO.popen(%w[age -r age1gyxlxmj9kluvncznsuqtnlqkptrkk8vdg6vjrxk4dyngwltrzsgsyaql62], "r+b") do |io|
      io.write("x" * n)
      io.close_write
      io.read
    end
    ["seed-age-#{n}", file]
  end
end

# Defines fuzz:<name>: builds test/c/fuzz_<name>.c with the modules and libraries it includes
# (c_needs, rakelib/c_tests.rake) and runs it.
def define_fuzz_task(name, description, seeds: {})
  desc "Fuzz #{description} for FUZZ_SECONDS seconds (default 60) with libFuzzer + ASan/UBSan"
  task name do
    mkdir_p C_BUILD_DIR
    bin = File.join(C_BUILD_DIR, "fuzz_#{name}")
    seconds = Integer(ENV.fetch("FUZZ_SECONDS", "60"))
    src = "#{C_TEST_DIR}/fuzz_#{name}.c"
    modules, libs = c_needs(src)
    sh "clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I#{C_EXT_DIR} " \
       "#{c_pkg_flags('cflags', libs)} -o #{bin} #{src} #{modules.join(' ')} #{c_pkg_flags('libs', libs)}"
    corpus = File.join(C_BUILD_DIR, "fuzz_#{name}_corpus")
    mkdir_p corpus
    (seeds.respond_to?(:call) ? seeds.call : seeds).each { |file, text| File.binwrite(File.join(corpus, file), text) }
    # Inputs that once crashed it: replayed first, as part of the corpus.
    Dir[File.join(C_TEST_DIR, "fuzz_regressions", name.to_s, "*")].each { |file| cp file, corpus, verbose: false }
    # A new crash lands in the build folder (libFuzzer's default is the current one: the checkout).
    sh({ "ASAN_OPTIONS" => "detect_leaks=1" }, bin, "-max_total_time=#{seconds}", "-max_len=4096",
       "-artifact_prefix=#{C_BUILD_DIR}/fuzz_#{name}-", corpus)
  end
end

namespace :fuzz do
  define_fuzz_task :sigv4, "sigv4.c"
  define_fuzz_task :s3_xml, "s3_xml.c (S3's XML answers)", seeds: FUZZ_S3_XML_SEEDS
  define_fuzz_task :dump_annotate, "dump_annotate.c (dump_all's lines)", seeds: FUZZ_DUMP_ANNOTATE_SEEDS
  define_fuzz_task :heap_scan, "heap_scan.c (dump_all's lines, checked and read)", seeds: FUZZ_HEAP_SCAN_SEEDS
  define_fuzz_task :heap_graph, "heap_graph.c and heap_retention.c (a dump's graph, dominators, paths)",
                   seeds: FUZZ_HEAP_GRAPH_SEEDS
  define_fuzz_task :age_reader, "age.c (age files, read with a fixed identity)", seeds: FUZZ_AGE_READER_SEEDS
end
