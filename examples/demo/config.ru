# frozen_string_literal: true

# The demo's application: a small catalogue kept in memory, and a leak: every request leaves a
# record behind that nothing drops, as a cache without eviction does. Its heap dump has allocation
# sites of its own (this file's lines) next to Ruby's and the gems'.
require "json"

# The catalogue is built when the app loads (in each worker, after on_worker_boot armed it).
module DemoCatalog
  PRODUCTS = Array.new(20_000) do |i|
    { "id" => i, "name" => "product #{i}", "tags" => %W[tag#{i % 7} tag#{i % 13}], "price" => i * 1.5 }
  end
  DESCRIPTIONS = Array.new(5_000) { |i| "a description of product #{i}, " * 4 }
  SEEN = [] # rubocop:disable Style/MutableConstant -- the leak: every request seen, never dropped
  LOCK = Mutex.new

  # What each request leaves behind: a Hash of nine strings (more objects a request than puma's own
  # garbage of one, which a dump holds too until a GC collects it), one of them the request's headers
  # as text (~4 KB: enough that what SEEN holds is a leak suspect within seconds of traffic).
  RECORDED = { "path" => "PATH_INFO", "query" => "QUERY_STRING", "method" => "REQUEST_METHOD", "host" => "HTTP_HOST",
               "agent" => "HTTP_USER_AGENT", "accept" => "HTTP_ACCEPT", "protocol" => "SERVER_PROTOCOL" }.freeze

  def self.remember(env)
    record = RECORDED.transform_values { |key| env[key].to_s.dup }.merge!("at" => Time.now.to_f.to_s, "headers" => headers(env))
    LOCK.synchronize { SEEN << record }
  end

  def self.headers(env) = env.select { |name, _| name.start_with?("HTTP_") }.to_a.inspect * 16
end

run lambda { |env|
  DemoCatalog.remember(env)
  product = DemoCatalog::PRODUCTS[rand(DemoCatalog::PRODUCTS.size)]
  [200, { "content-type" => "application/json" }, [JSON.generate(product.merge("pid" => Process.pid))]]
}
