# frozen_string_literal: true

# The demo's application: a small catalogue kept in memory, so that its heap dump has allocation
# sites of its own (this file's lines) at the top, next to Ruby's and the gems'.
require "json"

# Built when the app loads (in each worker, after on_worker_boot armed allocation tracing).
module DemoCatalog
  PRODUCTS = Array.new(20_000) do |i|
    { "id" => i, "name" => "product #{i}", "tags" => %W[tag#{i % 7} tag#{i % 13}], "price" => i * 1.5 }
  end
  DESCRIPTIONS = Array.new(5_000) { |i| "a description of product #{i}, " * 4 }
  RECENT = [] # rubocop:disable Style/MutableConstant -- the last requests seen, bounded
  LOCK = Mutex.new

  def self.remember(env)
    LOCK.synchronize do
      RECENT << { "path" => env["PATH_INFO"].dup, "at" => Time.now.to_f.to_s }
      RECENT.shift while RECENT.size > 500
    end
  end
end

run lambda { |env|
  DemoCatalog.remember(env)
  product = DemoCatalog::PRODUCTS[rand(DemoCatalog::PRODUCTS.size)]
  [200, { "content-type" => "application/json" }, [JSON.generate(product.merge("pid" => Process.pid))]]
}
