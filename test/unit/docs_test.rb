# frozen_string_literal: true

require "test_helper"

# The documents README sends readers to exist and hold what README's table says they hold.
class DocsTest < HCTest::TestCase
  ROOT = HCTest::ROOT

  def readme = File.read(File.join(ROOT, "README.md"), encoding: "UTF-8")

  # The checkout's files under these folders, as paths from its root.
  def files_under(*dirs) = Dir.chdir(ROOT) { Dir.glob("{#{dirs.join(',')}}/**/*").select { |f| File.file?(f) } }

  # Whether a document's token names file: its path or the end of it ("cli/list.rb").
  def names?(token, file) = file == token || file.end_with?("/#{token}")

  def test_every_document_readme_links_exists
    links = readme.scan(%r{\]\((doc/[^)#]+)\)}).flatten.uniq
    refute_empty links
    links.each { |link| assert File.file?(File.join(ROOT, link)), "README links #{link}" }
  end

  # doc/architecture.md names every C file, every header with no C file of its own and every file
  # under lib/ (the vendored drawing library aside), and each file it names exists: the map of the
  # code cannot drift from the code. A file is named by its path or the end of it ("cli/list.rb").
  def test_the_architecture_map_names_every_file_and_only_files_that_exist
    map = File.read(File.join(ROOT, "doc/architecture.md"), encoding: "UTF-8")
    named = map.scan(/`([^`\s*]+\.(?:rb|c|h|rake|js|css|md))`/).flatten.uniq
    refute_empty named
    files = files_under(*%w[ext lib test doc rakelib bin bench])
    assert_empty named.reject { |token| files.any? { |f| names?(token, f) } }, "doc/architecture.md names no such file"
    c_files = files.grep(%r{\Aext/heapcapture/[^/]+\.c\z})
    headers = files.grep(%r{\Aext/heapcapture/[^/]+\.h\z}).reject { |h| c_files.include?(h.sub(/\.h\z/, ".c")) }
    lib = files.grep(%r{\Alib/.+\.(?:rb|rake|js|css)\z}).reject { |f| f.include?("/vendor/") }
    assert_operator c_files.size, :>, 30
    assert_empty (c_files + headers + lib).reject { |file| named.any? { |token| names?(token, file) } },
                 "doc/architecture.md does not name these files"
  end

  # doc/figures.md holds the measurements behind the code, by file: each file it names exists.
  def test_the_figures_name_files_that_exist
    files = files_under("ext", "lib")
    named = File.read(File.join(ROOT, "doc/figures.md"), encoding: "UTF-8").scan(/^\| `([^`]+\.(?:c|h|rb))` \|/).flatten
    assert_operator named.size, :>, 15
    assert_empty(named.reject { |token| files.any? { |f| names?(token, f) } }, "doc/figures.md names no such file")
  end

  # Test files move (by tier and subsystem): every test file README and the documents name is there
  # (tests, C tests, support files, fixtures).
  def test_every_test_file_the_documents_name_exists
    docs = Dir[File.join(ROOT, "{README.md,doc/*.md}")]
    named = docs.flat_map { |doc| File.read(doc, encoding: "UTF-8").scan(%r{\btest/[\w/.-]+\.(?:rb|c)\b}).map { |t| [doc, t] } }
    assert_operator named.size, :>, 10
    missing = named.reject { |_, path| File.file?(File.join(ROOT, path)) }
    assert_empty missing.map { |doc, path| "#{File.basename(doc)} names #{path}" }
  end

  # README: "capture, fork and inline modes and their trade-off, compression, destinations, the
  # tempfile, errors". These sections were lost once (commit 12dcaef) while README still pointed here.
  def test_doc_capture_has_the_sections_readme_names
    row = readme.lines.find { |line| line.include?("[doc/capture.md]") } or flunk "README's table lists doc/capture.md"
    headings = File.read(File.join(ROOT, "doc/capture.md"), encoding: "UTF-8").scan(/^## (.+)$/).flatten
    { "modes" => /\AModes/, "compression" => /\ACompression/, "destinations" => /\ADestinations/,
      "the tempfile" => /\AThe tempfile/, "errors" => /\AResults and errors/ }.each do |topic, heading|
      assert_includes row, topic
      assert(headings.any? { |h| h.match?(heading) }, "doc/capture.md has a section on #{topic}: #{headings.inspect}")
    end
  end
end
