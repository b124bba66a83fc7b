# frozen_string_literal: true

require "test_helper"

# The documents README sends readers to exist and hold what README's table says they hold.
class DocsTest < HCTest::TestCase
  ROOT = File.expand_path("..", __dir__)

  def readme = File.read(File.join(ROOT, "README.md"), encoding: "UTF-8")

  def test_every_document_readme_links_exists
    links = readme.scan(%r{\]\((doc/[^)#]+)\)}).flatten.uniq
    refute_empty links
    links.each { |link| assert File.file?(File.join(ROOT, link)), "README links #{link}" }
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
