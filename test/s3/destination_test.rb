# frozen_string_literal: true

require "test_helper"
require_relative "../support/s3_helpers"

# A destination is one object that stores, lists, downloads and deletes, the same way for a
# local folder and a bucket (the capture stores through it, `heapcapture list`/`fetch` read it).
class DestinationTest < HCTest::TestCase
  include HCTest::S3Helpers

  KEY = "2026-11-21T20-30-42Z-web.1-pid42-heap.ndjson.gz"

  def s3_destination
    prefix = "destination-#{Process.pid}-#{rand(1 << 30)}/"
    HeapCapture::Destination.for(HeapCapture::Configuration.new(ENV).apply(destination: "s3://#{bucket}/#{prefix}"))
  end

  def file_destination
    dir = File.join(@tmpdir, "dumps")
    HeapCapture::Destination.for(HeapCapture::Configuration.new({}).apply(destination: "file://#{dir}"))
  end

  def test_a_bucket_stores_lists_downloads_and_deletes
    round_trip(s3_destination) { |_d, key| "s3://#{bucket}/#{key}" }
  end

  def test_a_folder_stores_lists_downloads_and_deletes
    round_trip(file_destination) { |d, key| File.join(d.dir, key) }
  end

  def test_deleting_what_is_not_there_is_not_an_error
    [s3_destination, file_destination].each { |d| assert_nil d.delete("#{d.prefix}nothing-here.ndjson.gz") }
  end

  def test_a_folder_key_never_leaves_the_folder
    error = assert_raises(HeapCapture::Error) { file_destination.delete("../outside.ndjson.gz") }
    assert_match(/is not a key in file:/, error.message)
  end

  private

  def round_trip(destination)
    source = random_file(1000)
    key = "#{destination.prefix}#{KEY}"
    assert_equal yield(destination, key), destination.store(source, key)["location"]
    assert_equal [[key, 1000]], destination.dumps.map { |e| [e.key, e.size] }
    assert_equal key, destination.latest.key
    copy = File.join(@tmpdir, "copy")
    assert_equal 1000, destination.download(key, copy)
    assert_equal sha256_file(source), sha256_file(copy)
    assert_nil destination.delete(key)
    assert_empty destination.dumps
    error = assert_raises(HeapCapture::Error) { destination.download(key, File.join(@tmpdir, "again")) }
    assert_match(/no dump .*see heapcapture list/, error.message)
  end
end
