#include "llm/kv_spec.h"

#include "common/testing.h"
#include "gtest/gtest.h"

namespace tqdb::llm {
namespace {

TEST(KvSpecTest, ParsesTheGrammar) {
  auto k4v2 = ParseKvSpec("K4V2");
  ASSERT_OK(k4v2);
  EXPECT_FALSE(k4v2->exact);
  EXPECT_EQ(k4v2->key_format, "tq4");
  EXPECT_EQ(k4v2->value_format, "tq2");
  EXPECT_EQ(k4v2->Name(), "K4V2");

  auto turbo = ParseKvSpec("turbo3/turbo3");
  ASSERT_OK(turbo);
  EXPECT_EQ(turbo->key_format, "turbo3");
  EXPECT_EQ(turbo->value_format, "turbo3");
  EXPECT_EQ(turbo->Name(), "turbo3/turbo3");

  auto mixed = ParseKvSpec("tq4p/tq4");
  ASSERT_OK(mixed);
  EXPECT_EQ(mixed->key_format, "tq4p");
  EXPECT_EQ(mixed->Name(), "tq4p/tq4");
  // Plain tq pairs print in the short form.
  EXPECT_EQ(ParseKvSpec("tq3/tq2")->Name(), "K3V2");

  auto fp32 = ParseKvSpec("fp32");
  ASSERT_OK(fp32);
  EXPECT_TRUE(fp32->exact);
  EXPECT_EQ(fp32->Name(), "fp32");
}

TEST(KvSpecTest, RejectsOtherText) {
  for (const char* bad : {"", "K4", "K4V", "K4V4x", "KxV4", "tq4", "/tq4", "tq4/", "a/b/c"}) {
    EXPECT_STATUS_CODE(ParseKvSpec(bad), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(KvSpecTest, NamesBoundaryAndWindow) {
  KvSpec spec = *ParseKvSpec("K2V2");
  spec.boundary_layers = 1;
  spec.window = 32;
  EXPECT_EQ(spec.Name(), "K2V2+b1:K4V4+w32");
  spec.window_dtype = storage::DType::kF32;
  EXPECT_EQ(spec.Name(), "K2V2+b1:K4V4+w32:f32");
}

TEST(KvSpecTest, CollectionConfig) {
  KvShape shape;
  shape.num_layers = 5;
  shape.num_heads = 8;
  shape.num_kv_heads = 4;
  shape.head_dim = 8;
  shape.max_tokens = 512;
  KvSpec spec = *ParseKvSpec("K3V2");
  spec.boundary_layers = 1;
  spec.window = 16;
  storage::KvCollectionConfig c = CollectionConfig(spec, shape);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.key_format, "tq3");
  EXPECT_EQ(c.value_format, "tq2");
  EXPECT_EQ(c.boundary_layers, 1);
  EXPECT_EQ(c.boundary_key_format, "tq4");
  EXPECT_EQ(c.exact_window, 16u);
  EXPECT_EQ(c.exact_dtype, storage::DType::kF16);

  // fp32: every position of the context in the exact window, as float32.
  c = CollectionConfig(*ParseKvSpec("fp32"), shape);
  EXPECT_EQ(c.exact_window, 512u);
  EXPECT_EQ(c.exact_dtype, storage::DType::kF32);
}

}  // namespace
}  // namespace tqdb::llm
